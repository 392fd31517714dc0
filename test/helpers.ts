/** Shared test set-up: one backend per test process (native when built, as in CI). */
import { BackendInfo, initBackend } from '../src/backend';

export function backend(): Promise<BackendInfo> {
  return initBackend(process.env.HAT_BACKEND ?? 'auto');
}
