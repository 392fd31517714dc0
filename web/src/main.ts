/**
 * The page: the exported task models of models/index.json (each a plain TensorFlow.js layers model written
 * by `hat export`), a canvas to draw a digit on (or an image file, or an MNIST test digit), the prediction of
 * the selected task with its top 3, and the units each task uses per layer. Everything is served by the
 * page's own origin. `?backend=cpu` (or webgl) forces a TensorFlow.js backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { ExportMetadata } from '../../src/models/export';
import { type Preprocess, fromSpec } from '../../src/data/preprocess';
import { type Pixels, borderMean, fromRgba, invert, toStored } from './digit';
import { TASK_COLOURS, renderMasks } from './masks';
import type { WebModelEntry, WebModelIndex, WebSamples } from './model-index';
import './style.css';

interface LoadedTask {
  entry: WebModelEntry;
  model: tf.LayersModel;
  meta: ExportMetadata;
  pre: Preprocess;
  colour: string;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

const canvas = byId<HTMLCanvasElement>('pad');
const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
const seen = byId<HTMLCanvasElement>('seen');
const taskSelect = byId<HTMLSelectElement>('task');
const centre = byId<HTMLInputElement>('centre');
const status = byId<HTMLParagraphElement>('status');
const prediction = byId<HTMLParagraphElement>('prediction');
const top3 = byId<HTMLOListElement>('top3');
const about = byId<HTMLParagraphElement>('about');

const PEN = 22; // stroke width on the 280 px pad: about 2 px of a 28 px digit
let tasks: LoadedTask[] = [];
let drawn = false;

function setStatus(text: string, state: 'loading' | 'ready' | 'error'): void {
  status.textContent = text;
  status.dataset.state = state;
}

// ---- the drawing pad -------------------------------------------------------------------------------------

function clearPad(): void {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  drawn = false;
  showPrediction();
}

function padPoint(e: PointerEvent): [number, number] {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
}

let last: [number, number] | null = null;
canvas.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  canvas.setPointerCapture(e.pointerId);
  last = padPoint(e);
  stroke(last, last);
});
canvas.addEventListener('pointermove', (e) => {
  if (!last) return;
  const p = padPoint(e);
  stroke(last, p);
  last = p;
});
const endStroke = () => {
  if (!last) return;
  last = null;
  predict();
};
canvas.addEventListener('pointerup', endStroke);
canvas.addEventListener('pointercancel', endStroke);
canvas.addEventListener('keydown', (e) => {
  if (e.key === 'Delete' || e.key === 'Backspace' || e.key === 'Escape') {
    e.preventDefault();
    clearPad();
  }
});

function stroke(a: [number, number], b: [number, number]): void {
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = PEN;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(...a);
  ctx.lineTo(...b);
  ctx.stroke();
  drawn = true;
}

/** Paints a picture on the pad, fitted and centred on black. */
function paint(p: Pixels): void {
  const img = new ImageData(p.width, p.height);
  for (let i = 0; i < p.width * p.height; i++) {
    const [r, g, b] = p.channels === 1 ? [p.data[i], p.data[i], p.data[i]] : p.data.subarray(3 * i, 3 * i + 3);
    img.data.set([r * 255, g * 255, b * 255, 255], 4 * i);
  }
  const tmp = document.createElement('canvas');
  tmp.width = p.width;
  tmp.height = p.height;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  clearPad();
  const f = Math.min(canvas.width / p.width, canvas.height / p.height);
  const [w, h] = [p.width * f, p.height * f];
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(tmp, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  drawn = true;
  predict();
}

/** An image file on the pad: light pictures of a grey task are inverted (digits are light on black). */
async function loadFile(file: File): Promise<void> {
  try {
    const bitmap = await createImageBitmap(file);
    const f = Math.min(1, canvas.width / Math.max(bitmap.width, bitmap.height));
    const tmp = document.createElement('canvas');
    tmp.width = Math.max(1, Math.round(bitmap.width * f));
    tmp.height = Math.max(1, Math.round(bitmap.height * f));
    const t = tmp.getContext('2d')!;
    t.drawImage(bitmap, 0, 0, tmp.width, tmp.height);
    bitmap.close();
    const grey = current()?.meta.task.preprocess.inShape[2] !== 3;
    let p = fromRgba(t.getImageData(0, 0, tmp.width, tmp.height).data, tmp.width, tmp.height, grey ? 1 : 3);
    if (grey && borderMean(p) > 0.5) p = invert(p);
    paint(p);
  } catch (e) {
    setStatus(`${file.name} cannot be read as an image (${(e as Error).message})`, 'error');
  }
}

const fileInput = byId<HTMLInputElement>('file');
fileInput.addEventListener('change', () => {
  const f = fileInput.files?.[0];
  if (f) void loadFile(f);
  fileInput.value = '';
});
const drop = byId<HTMLDivElement>('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer?.files[0];
  if (f) void loadFile(f);
});
byId<HTMLButtonElement>('clear').addEventListener('click', () => {
  clearPad();
  canvas.focus();
});
centre.addEventListener('change', () => predict());

// ---- prediction ------------------------------------------------------------------------------------------

const current = (): LoadedTask | undefined => tasks[Number(taskSelect.value)];

function showPrediction(probs?: number[], t?: LoadedTask): void {
  top3.replaceChildren();
  if (!probs || !t) {
    prediction.textContent = drawn ? 'Nothing to classify.' : 'Draw a digit to classify it.';
    prediction.dataset.state = 'empty';
    delete prediction.dataset.class;
    delete prediction.dataset.name;
    seen.getContext('2d')!.clearRect(0, 0, seen.width, seen.height);
    return;
  }
  const names = t.meta.task.classNames;
  const order = probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
  const [p, k] = order[0];
  prediction.textContent = `${names[k] ?? k} (${(100 * p).toFixed(1)}%)`;
  prediction.dataset.state = 'done';
  prediction.dataset.class = String(k);
  prediction.dataset.name = names[k] ?? String(k);
  for (const [q, c] of order.slice(0, 3)) {
    const li = document.createElement('li');
    const pct = `${(100 * q).toFixed(1)}%`;
    li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span><span class="pct"></span>';
    li.querySelector('.name')!.textContent = names[c] ?? String(c);
    (li.querySelector('.bar > span') as HTMLElement).style.width = pct;
    li.querySelector('.bar')!.setAttribute('aria-hidden', 'true');
    li.querySelector('.pct')!.textContent = pct;
    li.setAttribute('aria-label', `${names[c] ?? c}: ${pct}`);
    top3.append(li);
  }
}

/** What the network is given, drawn large (grey or colour bytes of the task's stored format). */
function showSeen(bytes: Uint8Array, shape: readonly number[]): void {
  const [h, w, c] = shape;
  const img = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = c === 1 ? [bytes[i], bytes[i], bytes[i]] : bytes.subarray(3 * i, 3 * i + 3);
    img.data.set([r, g, b, 255], 4 * i);
  }
  seen.width = w;
  seen.height = h;
  seen.getContext('2d')!.putImageData(img, 0, 0);
}

function predict(): void {
  const t = current();
  if (!t || !drawn) return showPrediction();
  const shape = t.meta.task.preprocess.inShape;
  const pixels = fromRgba(
    ctx.getImageData(0, 0, canvas.width, canvas.height).data,
    canvas.width,
    canvas.height,
    shape[2] === 3 ? 3 : 1,
  );
  const bytes = toStored(pixels, shape, centre.checked);
  if (!bytes) return showPrediction();
  showSeen(bytes, shape);
  const x = new Float32Array(t.pre.size);
  t.pre.write(bytes, 0, x, 0);
  const probs = tf.tidy(() => {
    const out = t.model.predict(tf.tensor(x, [1, ...t.pre.outShape])) as tf.Tensor;
    return Array.from(out.dataSync());
  });
  showPrediction(probs, t);
}

// ---- tasks and masks -------------------------------------------------------------------------------------

function selectTask(): void {
  const i = Number(taskSelect.value);
  const t = tasks[i];
  if (!t) return;
  const acc = t.entry.accuracy;
  about.textContent =
    `${t.entry.task}: classes ${t.meta.task.classNames.join(', ')}. ` +
    `Units kept: ${t.meta.units.map((u) => `${u.layer} ${u.kept}/${u.of}`).join(', ')}; ` +
    `${t.entry.parameters.exported.toLocaleString('en')} parameters (${(t.entry.bytes / 1024).toFixed(0)} KB). ` +
    `Test accuracy ${(100 * acc.exported).toFixed(1)}% on ${acc.samples.toLocaleString('en')} MNIST test images.`;
  renderMasks(
    byId('masks'),
    tasks.map((u, j) => ({ label: `task ${j + 1} (${u.entry.task})`, colour: u.colour, masks: u.meta.masks })),
    i,
  );
  predict();
}
taskSelect.addEventListener('change', selectTask);

async function loadSamples(): Promise<void> {
  const res = await fetch('models/samples.json');
  if (!res.ok) return;
  const s = (await res.json()) as WebSamples;
  const [h, w] = s.shape;
  const box = byId<HTMLDivElement>('samples');
  for (const sample of s.samples) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = String(sample.label);
    b.setAttribute('aria-label', `MNIST test digit ${sample.label} (test image ${sample.index})`);
    b.addEventListener('click', () => {
      const bytes = Uint8Array.from(atob(sample.pixels), (ch) => ch.charCodeAt(0));
      paint({ width: w, height: h, channels: 1, data: Float32Array.from(bytes, (v) => v / 255) });
    });
    box.append(b);
  }
  box.hidden = false;
}

async function main(): Promise<void> {
  setStatus('Loading TensorFlow.js and the models…', 'loading');
  clearPad();
  const want = new URLSearchParams(location.search).get('backend');
  if (want && !(await tf.setBackend(want))) throw new Error(`the TensorFlow.js backend '${want}' is not available`);
  await tf.ready();
  byId('backend').textContent = tf.getBackend();
  const res = await fetch('models/index.json');
  if (!res.ok) throw new Error(`models/index.json: ${res.status} ${res.statusText} (npm run web:example writes it)`);
  const index = (await res.json()) as WebModelIndex;
  tasks = await Promise.all(
    index.models.map(async (entry, i) => {
      const model = await tf.loadLayersModel(`models/${entry.path}`);
      const meta = (model.getUserDefinedMetadata() as { hatTs?: ExportMetadata } | undefined)?.hatTs;
      if (!meta) throw new Error(`${entry.path} has no hat-ts metadata (write it with hat export)`);
      return { entry, model, meta, pre: fromSpec(meta.task.preprocess), colour: TASK_COLOURS[i % TASK_COLOURS.length] };
    }),
  );
  taskSelect.replaceChildren(
    ...tasks.map(
      (t, i) => new Option(`Task ${i + 1}: ${t.entry.task} (${t.meta.task.classNames.join(', ')})`, String(i)),
    ),
  );
  const src = index.source;
  byId('source').textContent =
    `${src.approach.toUpperCase()} on ${src.experiment}, MLP ${src.hidden.join('-')}, ${src.maxTrain.toLocaleString('en')} ` +
    `training images per task, ${src.nepochs} epochs, seed ${src.seed}`;
  selectTask();
  await loadSamples();
  setStatus(`Ready: ${tasks.length} task models on the ${tf.getBackend()} backend.`, 'ready');
}

main().catch((e: unknown) => setStatus(`The page could not start: ${(e as Error).message}`, 'error'));
