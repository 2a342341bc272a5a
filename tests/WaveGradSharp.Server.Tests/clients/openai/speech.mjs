// The official openai package against wavegrad serve: audio.speech.create writes the WAV it gets back, then a request the
// server refuses shows that the SDK reads its error. usage: node speech.mjs BASE_URL OUT.wav
import OpenAI from 'openai';
import { writeFile } from 'node:fs/promises';

const [baseURL, out] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.WAVEGRAD_API_KEY ?? 'none', timeout: 120_000, maxRetries: 0 });
const response = await client.audio.speech.create({
  model: 'tts-1', voice: 'alloy', input: 'Hello from the official OpenAI client.', response_format: 'wav',
});
const bytes = Buffer.from(await response.arrayBuffer());
await writeFile(out, bytes);
let refused = null;
try {
  await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello.', response_format: 'mp3' });
} catch (e) {
  refused = { status: e.status, type: e.type, param: e.param, code: e.code, message: e.message };
}
console.log(JSON.stringify({ status: response.status, contentType: response.headers.get('content-type'), bytes: bytes.length, refused }));
