// The wavegrad serve page: streamed playback through Web Audio, a live spectrogram, the denoising steps and the image
// trajectory. Plain script, no build step. window.wavegrad exposes playback state for the browser test.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { audio: null, analyser: null, next: 0, first: null, end: 0, abort: null, played: 0 };
window.wavegrad = {
  get playedSeconds() {
    if (!state.audio || state.first === null) return state.played;
    return Math.max(state.played, Math.min(state.audio.currentTime, state.end) - state.first);
  },
  chunks: 0,
};

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = localStorage.getItem('wavegradKey');
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

// An error answer's message (the server's one line of JSON), or the HTTP status.
async function errorOf(response) {
  try { return (await response.json()).error.message; } catch { return `the server answered ${response.status}`; }
}

function showError(id, message) {
  const e = $(id);
  e.textContent = message || '';
  e.hidden = !message;
}

// ---- tabs: arrow keys move between them, as the WAI-ARIA tabs pattern has it ----
const tabs = [...document.querySelectorAll('[role=tab]')];
function selectTab(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  tab.focus();
}
tabs.forEach((t, i) => {
  t.addEventListener('click', () => selectTab(t));
  t.addEventListener('keydown', (e) => {
    const k = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (k) { e.preventDefault(); selectTab(tabs[(i + k + tabs.length) % tabs.length]); }
    if (e.key === 'Home') { e.preventDefault(); selectTab(tabs[0]); }
    if (e.key === 'End') { e.preventDefault(); selectTab(tabs[tabs.length - 1]); }
  });
});

// ---- voices and samplers ----
async function loadVoices() {
  try {
    const r = await fetch('/v1/voices', { headers: headers() });
    if (!r.ok) throw new Error(await errorOf(r));
    const v = await r.json();
    for (const voice of v.voices) $('voice').add(new Option(`${voice.id} (${voice.sample_rate} Hz)`, voice.id));
    for (const s of v.voices[0].samplers) {
      $('sampler').add(new Option(s, s));
      $('denoise-sampler').add(new Option(s, s));
    }
  } catch (e) {
    showError('speak-error', `Could not list the voices: ${e.message}`);
  }
}
for (let d = 0; d <= 9; d++) $('digit').add(new Option(String(d), String(d), d === 7, d === 7));

function renderFields(samplerId, stepsId) {
  const body = {};
  if ($(samplerId).value) body.sampler = $(samplerId).value;
  if ($(stepsId).value) body.steps = Number($(stepsId).value);
  return body;
}

// ---- streamed playback ----
function audioContext() {
  if (!state.audio) {
    state.audio = new AudioContext();
    state.analyser = state.audio.createAnalyser();
    state.analyser.fftSize = 1024;
    state.analyser.smoothingTimeConstant = 0;
    state.analyser.connect(state.audio.destination);
    requestAnimationFrame(drawLive);
  }
  return state.audio;
}

// Schedules float samples to play right after what is already queued.
function enqueue(samples, rate) {
  const ctx = audioContext();
  const buffer = ctx.createBuffer(1, samples.length, rate);
  buffer.copyToChannel(samples, 0);
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(state.analyser);
  const at = Math.max(state.next, ctx.currentTime + 0.05);
  if (state.first === null) state.first = at;
  source.start(at);
  state.next = at + buffer.duration;
  state.end = state.next;
  window.wavegrad.chunks++;
}

function pcm16ToFloat(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 32768;
  return out;
}

async function speak(event) {
  event.preventDefault();
  showError('speak-error', '');
  const text = $('text').value.trim();
  if (!text) { showError('speak-error', 'Type some text to speak.'); $('text').focus(); return; }
  stopPlayback();
  const ctx = audioContext();
  await ctx.resume();
  state.played = 0; state.first = null; state.next = 0;
  const abort = new AbortController();
  state.abort = abort;
  $('play').disabled = true; $('stop').disabled = false;
  const started = performance.now();
  $('speak-status').textContent = 'Rendering…';
  try {
    const body = { model: 'wavegrad', input: text, voice: $('voice').value || undefined, response_format: 'pcm',
                   ...renderFields('sampler', 'steps') };
    const r = await fetch('/v1/audio/speech', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal: abort.signal });
    if (!r.ok) throw new Error(await errorOf(r));
    const rate = Number(r.headers.get('X-Sample-Rate')) || 22050;
    const reader = r.body.getReader();
    let carry = new Uint8Array(0), seconds = 0, firstAt = null;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const joined = new Uint8Array(carry.length + value.length);
      joined.set(carry); joined.set(value, carry.length);
      const even = joined.length & ~1;
      carry = joined.slice(even);
      if (even === 0) continue;
      const samples = pcm16ToFloat(joined.subarray(0, even));
      enqueue(samples, rate);
      seconds += samples.length / rate;
      if (firstAt === null) firstAt = (performance.now() - started) / 1000;
      $('speak-status').textContent = `Playing: first audio after ${firstAt.toFixed(2)} s, ${seconds.toFixed(1)} s received`;
    }
    $('speak-status').textContent = `Done: ${seconds.toFixed(1)} s of speech, first audio after ${firstAt.toFixed(2)} s`;
  } catch (e) {
    if (e.name === 'AbortError') $('speak-status').textContent = 'Stopped.';
    else { showError('speak-error', e.message); $('speak-status').textContent = ''; }
  } finally {
    $('play').disabled = false; $('stop').disabled = true;
    state.abort = null;
  }
}

function stopPlayback() {
  if (state.abort) state.abort.abort();
  if (state.audio && state.first !== null) {
    state.played = window.wavegrad.playedSeconds;
    // A fresh context drops whatever was scheduled.
    state.audio.close();
    state.audio = null; state.first = null;
  }
}

$('speak-form').addEventListener('submit', speak);
$('stop').addEventListener('click', () => { stopPlayback(); $('play').focus(); });

// ---- the live spectrogram: one column per frame, scrolling left ----
function drawLive() {
  if (!state.audio) return;
  const canvas = $('spectrogram'), g = canvas.getContext('2d');
  const bins = new Uint8Array(state.analyser.frequencyBinCount);
  state.analyser.getByteFrequencyData(bins);
  g.drawImage(canvas, -2, 0);
  const h = canvas.height;
  for (let y = 0; y < h; y++) {
    const v = bins[Math.floor((1 - y / h) * bins.length)] || 0;
    g.fillStyle = colour(v);
    g.fillRect(canvas.width - 2, y, 2, 1);
  }
  requestAnimationFrame(drawLive);
}

// Magma-like: black, purple, orange, pale yellow.
function colour(v) {
  const t = v / 255;
  const r = Math.round(255 * Math.min(1, t * 1.6));
  const g = Math.round(255 * Math.max(0, t * 1.4 - 0.45));
  const b = Math.round(255 * Math.max(0, Math.min(1, 0.35 + t - Math.max(0, t - 0.5) * 2.2)));
  return `rgb(${r},${g},${b})`;
}

// A spectrogram sent as base64 bytes [n_mels, frames] (low bands first) drawn into a canvas.
function drawMel(canvas, base64, nMels, frames) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const img = new ImageData(frames, nMels);
  for (let m = 0; m < nMels; m++)
    for (let f = 0; f < frames; f++) {
      const v = bytes[m * frames + f], o = ((nMels - 1 - m) * frames + f) * 4;
      const [r, g, b] = colour(v).match(/\d+/g).map(Number);
      img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
    }
  const tmp = new OffscreenCanvas(frames, nMels);
  tmp.getContext('2d').putImageData(img, 0, 0);
  const g = canvas.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function base64ToFloat(base64) {
  return pcm16ToFloat(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

// ---- watch it denoise ----
let denoise = null;
async function runDenoise(event) {
  event.preventDefault();
  showError('denoise-error', '');
  const text = $('denoise-text').value.trim();
  if (!text) { showError('denoise-error', 'Type a sentence.'); $('denoise-text').focus(); return; }
  $('denoise-run').disabled = true;
  $('denoise-status').textContent = 'Rendering every step…';
  try {
    const body = { input: text, voice: $('voice').value || undefined, start: $('denoise-start').value, ...renderFields('denoise-sampler', 'denoise-steps') };
    const r = await fetch('/v1/denoise', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
    if (!r.ok) throw new Error(await errorOf(r));
    denoise = await r.json();
    const slider = $('denoise-step');
    slider.max = String(denoise.steps.length);
    slider.value = '0';
    $('denoise-view').hidden = false;
    showDenoiseStep();
    $('denoise-status').textContent = `${denoise.steps.length} steps of ${denoise.sampler}, from ${denoise.start}: "${denoise.sentence}"`;
    slider.focus();
  } catch (e) {
    showError('denoise-error', e.message);
    $('denoise-status').textContent = '';
  } finally {
    $('denoise-run').disabled = false;
  }
}

// Step i of the slider: 0…n−1 the estimates, n the finished render (post-filtered).
function denoiseStep(i) {
  if (i < denoise.steps.length) return { pcm: denoise.steps[i].estimate_pcm, mel: denoise.steps[i].estimate_mel, noisy: denoise.steps[i].noisy_mel,
    label: `${i + 1} of ${denoise.steps.length} (noise σ ${denoise.steps[i].noise_std.toFixed(3)})` };
  return { pcm: denoise.final.pcm, mel: denoise.final.mel, noisy: null, label: 'finished render (post-filtered)' };
}

function showDenoiseStep() {
  const s = denoiseStep(Number($('denoise-step').value));
  $('denoise-step-label').textContent = s.label;
  drawMel($('denoise-estimate'), s.mel, denoise.n_mels, denoise.frames);
  const noisy = $('denoise-noisy');
  if (s.noisy) drawMel(noisy, s.noisy, denoise.n_mels, denoise.frames);
  else noisy.getContext('2d').clearRect(0, 0, noisy.width, noisy.height);
}

async function playDenoise(all) {
  if (!denoise) return;
  stopPlayback();
  const ctx = audioContext();
  await ctx.resume();
  state.first = null; state.next = 0; state.played = 0;
  const from = all ? 0 : Number($('denoise-step').value), to = all ? denoise.steps.length : from;
  for (let i = from; i <= to; i++) {
    enqueue(base64ToFloat(denoiseStep(i).pcm), denoise.sample_rate);
    if (all) enqueue(new Float32Array(Math.round(denoise.sample_rate * 0.3)), denoise.sample_rate);
  }
}

$('denoise-form').addEventListener('submit', runDenoise);
$('denoise-step').addEventListener('input', showDenoiseStep);
$('denoise-play').addEventListener('click', () => playDenoise(false));
$('denoise-play-all').addEventListener('click', () => playDenoise(true));

// ---- the image trajectory ----
let trajectory = null;
function drawGrey(canvas, base64, size, x = 0, w = canvas.width) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const img = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) img.data.set([bytes[i], bytes[i], bytes[i], 255], i * 4);
  const tmp = new OffscreenCanvas(size, size);
  tmp.getContext('2d').putImageData(img, 0, 0);
  const g = canvas.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, x, 0, w, Math.min(w, canvas.height));
}

async function runImages(event) {
  event.preventDefault();
  showError('images-error', '');
  $('images-run').disabled = true;
  $('images-status').textContent = 'Sampling…';
  try {
    const q = new URLSearchParams({ digit: $('digit').value, steps: $('image-steps').value || '50', seed: $('image-seed').value || '1' });
    const r = await fetch('/v1/images/trajectory?' + q, { headers: headers() });
    if (!r.ok) throw new Error(await errorOf(r));
    trajectory = await r.json();
    const slider = $('image-step');
    slider.max = String(trajectory.frames.length);
    slider.value = String(trajectory.frames.length);
    $('images-view').hidden = false;
    const strip = $('image-strip'), n = 10, w = strip.width / (n + 1);
    strip.getContext('2d').clearRect(0, 0, strip.width, strip.height);
    for (let k = 0; k < n; k++) {
      const f = trajectory.frames[Math.round(k * (trajectory.frames.length - 1) / (n - 1))];
      drawGrey(strip, f.pixels, trajectory.size, k * w, w - 4);
    }
    drawGrey(strip, trajectory.result, trajectory.size, n * w, w - 4);
    showImageStep();
    $('images-status').textContent = `${trajectory.frames.length} evaluations of ${trajectory.sampler}`;
    slider.focus();
  } catch (e) {
    showError('images-error', e.message);
    $('images-status').textContent = '';
  } finally {
    $('images-run').disabled = false;
  }
}

function showImageStep() {
  const i = Number($('image-step').value), last = i >= trajectory.frames.length;
  const f = last ? { pixels: trajectory.result } : trajectory.frames[i];
  $('image-step-label').textContent = last ? 'the sample' : `${i + 1} of ${trajectory.frames.length} (σ ${f.sigma.toFixed(3)})`;
  drawGrey($('image-frame'), f.pixels, trajectory.size);
}

$('images-form').addEventListener('submit', runImages);
$('image-step').addEventListener('input', showImageStep);

loadVoices();
