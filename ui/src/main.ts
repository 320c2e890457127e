import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
mount(App, { target });

// The service worker (ui/src/sw, built into /sw.js by scripts/build-sw.mjs): offline reading,
// notices and one-tap decisions. Same origin only.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => {
      // Without it the app still works online; nothing to tell the user.
    });
  });
}
