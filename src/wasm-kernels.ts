export function installWasmTrainingKernels() {}
