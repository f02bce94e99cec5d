// latent-notes explorers: the book's own trained models, run in the page by onnxruntime-web
// (its WebAssembly build, one thread). Every explorer is a <div class="ln-explorer"> written by
// a chapter (latent_notes/book/explorers.py) with its configuration in data-config; the still
// figure inside it stays on show until the runtime and the models have loaded.
import { runtimeFiles } from "./runtime.js";  // written by the build: null when built offline

const here = new URL(import.meta.url);            // <book>/_static/explorers/explorers.js
const runtimeFolder = new URL("../ort/", here);   // <book>/_static/ort/ (put there by the build)

let runtime = null;
export function loadRuntime() {
  if (runtime) return runtime;
  runtime = new Promise((resolve, reject) => {
    if (location.protocol === "file:") {
      reject(new Error("file"));
      return;
    }
    if (!runtimeFiles) {
      reject(new Error("missing"));
      return;
    }
    const script = document.createElement("script");
    script.src = new URL("ort.wasm.min.js", runtimeFolder).href;
    script.onload = () => {
      window.ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer needed
      window.ort.env.wasm.wasmPaths = runtimeFolder.href;
      resolve(window.ort);
    };
    script.onerror = () => reject(new Error("missing"));
    document.head.appendChild(script);
  });
  return runtime;
}

const MESSAGES = {
  file: "This explorer runs the book's models with WebAssembly, which browsers refuse to load " +
        "from a file: serve the book instead (make serve, then open http://127.0.0.1:8000).",
  missing: "The in-page runtime was not part of this build (it was built offline), so the " +
           "explorer is shown as a still figure.",
};

function say(element, text) {
  element.querySelector(".ln-note").textContent = text;
}

// One ONNX session per model file, shared by the explorers of a page.
const sessions = new Map();
export async function session(ort, url) {
  if (!sessions.has(url)) sessions.set(url, ort.InferenceSession.create(url));
  return sessions.get(url);
}

// Float32 image (1, C, H, W) in [0, 1] → the pixels of a canvas, ink dark on paper for one
// channel (as every figure of the book), scaled up by the canvas's CSS size.
export function paint(canvas, data, [channels, height, width], inkOnPaper = true) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  for (let i = 0; i < height * width; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[(channels === 1 ? 0 : c) * height * width + i];
      const shown = channels === 1 && inkOnPaper ? 1 - v : v;
      pixels.data[4 * i + c] = Math.round(255 * Math.min(1, Math.max(0, shown)));
    }
    pixels.data[4 * i + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
}

// The runs of one explorer (decoding, reconstructing, sampling), one at a time in the order
// asked: the runtime runs one model at a time. Each run belongs to a lane ("decode", "draw",
// ...); asking for a run makes the lane's earlier runs stale: one still waiting is skipped, one
// going on stops at its next `if (stale()) return null;`, so the latest input always wins and
// "clear" (`cancel(lane)`) wins over a run in flight. A run that fails is reported on the
// console and does not stop the runs after it. `ask` resolves to the run's result (null when
// it went stale), `done()` once every run asked so far has ended.
export function runs() {
  let chain = Promise.resolve(null);
  const latest = {};
  const cancel = lane => { latest[lane] = (latest[lane] || 0) + 1; return latest[lane]; };
  function ask(lane, job) {
    const ticket = cancel(lane);
    const stale = () => latest[lane] !== ticket;
    chain = chain.then(() => (stale() ? null : job(stale))).catch(error => {
      console.error(error);
      return null;
    });
    return chain;
  }
  return { ask, cancel, done: () => chain };
}

export const kinds = {};  // name → async function(element, ort, config, base): the explorer

async function start(element) {
  const config = JSON.parse(element.dataset.config);
  const base = new URL(config.folder, document.baseURI);
  let ort;
  try {
    ort = await loadRuntime();
  } catch (error) {
    say(element, MESSAGES[error.message] || String(error));
    element.dataset.state = error.message;
    return;
  }
  try {
    const explorer = await kinds[config.kind](element, ort, config, base);
    element.querySelector(".ln-still").hidden = true;
    element.querySelector(".ln-live").hidden = false;
    element.querySelector(".ln-note").hidden = true;
    element.explorer = explorer;  // the tests set inputs and read results through it
    element.dataset.state = "ready";
  } catch (error) {
    say(element, `The explorer could not start: ${error}`);
    element.dataset.state = "error";
    console.error(error);
  }
}

export function startAll() {
  document.querySelectorAll(".ln-explorer:not([data-state])").forEach(element => {
    element.dataset.state = "loading";
    start(element);
  });
}
