/**
 * Keeps the native TensorFlow library's start-up log off stderr, unless asked for (`hat --verbose` or
 * HAT_TF_LOG=1). TensorFlow 2.21 logs through absl, which writes everything to stderr until
 * absl::InitializeLog() is called (nobody calls it for the C library), so TF_CPP_MIN_LOG_LEVEL does not silence
 * the "WARNING: All log messages before absl::InitializeLog()..." and oneDNN lines. While the library loads,
 * file descriptor 2 points at a temporary file (the stderr-guard addon: dup/dup2, so a terminal stays the very
 * same terminal afterwards and the progress bar still works); afterwards the informational lines are dropped and
 * anything else (errors) is written to stderr as it came. Without the addon (no C compiler at set-up) the lines
 * show, as before.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface Guard {
  divert(file: string): boolean;
  restore(): boolean;
}

/** Does the user want TensorFlow's own log (HAT_TF_LOG=1, set by `hat --verbose`)? */
export function tfLogWanted(): boolean {
  const v = process.env.HAT_TF_LOG;
  return !!v && !/^(0|false|no|off)$/i.test(v);
}

let guard: Guard | null | undefined;

/** The addon built by scripts/build-addons.sh, or null when it is not there. */
function loadGuard(): Guard | null {
  if (guard !== undefined) return guard;
  const file = path.join(fs.realpathSync(__dirname), '..', '..', '.cache', 'native', 'stderr-guard.node');
  try {
    guard = require(file) as Guard;
  } catch {
    guard = null;
  }
  return guard;
}

/** Lines of TensorFlow's start-up log that say nothing a user must act on. */
const NOISE = [
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/,
  /^[IW]\d{4} [\d:. ]+\d+ [\w.-]+:\d+\] /, // absl INFO and WARNING lines (errors, E/F, stay)
  /^To enable the following instructions: .* in other operations, rebuild TensorFlow/, // cpu_feature_guard's second line
];

/** What of a captured log is worth showing: everything but the informational start-up lines. */
export function filterTfLog(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim() && !NOISE.some((re) => re.test(l)))
    .map((l) => l + '\n')
    .join('');
}

/**
 * Runs `load` (a require of the native package) with stderr captured, then writes what is worth showing of the
 * captured log to stderr (also when `load` throws: the error lines often say why a library failed to load).
 */
export function quietly<T>(load: () => T): T {
  if (tfLogWanted()) return load();
  const g = loadGuard();
  if (!g) return load();
  // create Node's stderr/stdout streams now, while fd 2 is still the terminal: created later they would not be TTYs
  void process.stderr.isTTY;
  void process.stdout.isTTY;
  const file = path.join(os.tmpdir(), `hat-tf-log-${process.pid}-${Date.now()}.txt`);
  if (!g.divert(file)) return load();
  try {
    return load();
  } finally {
    g.restore();
    const keep = filterTfLog(read(file));
    fs.rmSync(file, { force: true });
    if (keep) process.stderr.write(keep);
  }
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
