/* eslint import-x/no-cycle: "off" -- eslint-plugin-import-x crashes resolving the 'vite' package ("node with invalid interface loaded as resolver"); a config file has no cycles to find. */
import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
/** `vite dev` and `vite preview` forward /api here (the API's address), so the app runs same-origin. */
const api = process.env.COUNTERSIGN_API ?? 'http://127.0.0.1:7780';

/** The web app, built into ui/dist and served by the API from there. */
export default defineConfig({
  root,
  base: '/',
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  server: { proxy: { '/api': api } },
  preview: { proxy: { '/api': api } },
});
