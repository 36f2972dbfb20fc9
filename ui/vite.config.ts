import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The API serves dist/ at "/" (config `ui_dir`); `npm run dev` proxies the API so the dev loop uses it too.
const api = process.env.ORCHESTRATOR_API ?? 'http://127.0.0.1:8700';

export default defineConfig({
  plugins: [react()],
  base: './',
  server: {
    host: '127.0.0.1',
    proxy: { '/api': { target: api, ws: true } },
  },
  build: { outDir: 'dist', sourcemap: false, chunkSizeWarningLimit: 1200 },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
});
