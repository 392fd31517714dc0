// The web page (web/): `npm run web` builds it into web/dist and serves it on http://127.0.0.1:5173/.
import { defineConfig } from 'vite';

export default defineConfig({
  // relative URLs: the built folder works from any path
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 5173, strictPort: true },
});
