// analysis.html: draws the remix's analysis (the JSON in #analysis-data, written by remixer/page)
// on a zoomable canvas, names what is under the pointer, and ties the players to the timeline.
// No library and nothing fetched: the page must work offline, from one file.
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("analysis-data").textContent);
  const COLORS = {
    lane: "#f6f6f4", laneText: "#555", grid: "#e2e2de", beat: "#a8a8a8", downbeat: "#d62728",
    chord: "rgba(31, 119, 180, 0.28)", generated: "#ff7f0e", synced: "#2ca02c", move: "#999",
    wave: "#8f8f8f", warp: "#9467bd", cursor: "#111", hover: "rgba(0, 0, 0, 0.35)", view: "rgba(31, 119, 180, 0.18)",
  };
  const SECTION_COLORS = ["#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#bc80bd"];
  const LEFT = 104;   // CSS px for the lane names
  const RIGHT = 10;
  const MIN_SPAN = 1.0;  // seconds across the screen at the closest zoom
  const FONT = "12px system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif";
  const SMALL = "10px system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif";

  const timeline = document.getElementById("timeline");
  const overview = document.getElementById("overview");
  const tooltip = document.getElementById("tooltip");
  const players = Array.from(document.querySelectorAll("#players audio"));
  const duration = Math.max(data.duration, 1e-3);
  const view = { start: 0, end: duration };
  const drawn = {};
  const lanes = layout();
  let active = Math.max(0, data.tracks.findIndex((track) => track.label === "remix"));
  let hoverX = null;

  // --- geometry -------------------------------------------------------------------------------
  function layout() {
    const list = [["time", 20]];
    if (data.sections.length) list.push(["sections", 22]);
    if (data.prompts.length) list.push(["prompts", 22]);
    list.push(["song", 118], ["chords", 28], ["instrumental", 58], ["shift", 74]);
    const out = {};
    let y = 0;
    for (const [name, height] of list) {
      out[name] = [y, y + height];
      y += height + 3;
    }
    out.height = y;
    return out;
  }
  const plotWidth = () => Math.max(timeline.clientWidth - LEFT - RIGHT, 10);
  const span = () => view.end - view.start;
  const xAt = (t) => LEFT + ((t - view.start) / span()) * plotWidth();
  const timeAt = (x) => view.start + ((x - LEFT) / plotWidth()) * span();

  function fit(canvas, cssHeight) {
    const ratio = window.devicePixelRatio || 1;
    canvas.style.height = `${cssHeight}px`;
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(cssHeight * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return ctx;
  }

  // --- lookups --------------------------------------------------------------------------------
  function lastAtOrBefore(times, t) {  // index of the last time <= t, -1 if none
    let low = 0, high = times.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (times[mid] <= t) low = mid + 1; else high = mid;
    }
    return low - 1;
  }
  const spanAt = (spans, t) => spans.find((item) => item[0] <= t && t < item[1]);
  function clock(t, millis) {
    const sign = t < 0 ? "-" : "";
    const abs = Math.abs(t);
    const minutes = Math.floor(abs / 60);
    const seconds = abs - 60 * minutes;
    const text = millis ? seconds.toFixed(3).padStart(6, "0") : String(Math.floor(seconds)).padStart(2, "0");
    return `${sign}${minutes}:${text}`;
  }
  function colorOf(label) {  // the same color for the same label, as analysis.png (crc32 of the name)
    let crc = -1;
    for (const byte of new TextEncoder().encode(String(label).split(":")[0])) {
      crc ^= byte;
      for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    return SECTION_COLORS[((crc ^ -1) >>> 0) % SECTION_COLORS.length];
  }
  function shortened(ctx, text, width) {  // text cut with an ellipsis to fit width px, or ""
    if (ctx.measureText(text).width + 6 <= width) return text;
    for (let keep = text.length - 1; keep >= 3; keep--) {
      const cut = `${text.slice(0, keep)}…`;
      if (ctx.measureText(cut).width + 6 <= width) return cut;
    }
    return "";
  }

  // --- drawing the timeline -------------------------------------------------------------------
  function draw() {
    const ctx = fit(timeline, lanes.height);
    const width = timeline.clientWidth;
    ctx.clearRect(0, 0, width, lanes.height);
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    for (const name of Object.keys(lanes)) {
      if (name === "height" || name === "time") continue;
      const [top, bottom] = lanes[name];
      ctx.fillStyle = COLORS.lane;
      ctx.fillRect(0, top, width, bottom - top);
      ctx.fillStyle = COLORS.laneText;
      if (name !== "instrumental") ctx.fillText(name === "shift" ? "warp shift" : name, 8, (top + bottom) / 2);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(LEFT, 0, plotWidth(), lanes.height);
    ctx.clip();
    drawTimeAxis(ctx);
    if (data.sections.length) drawSpans(ctx, "sections", data.sections.map(([a, b, label]) => [a, b, label, colorOf(label)]));
    if (data.prompts.length) {
      drawSpans(ctx, "prompts", data.prompts.map(([a, b, section, text]) =>
        [a, b, section ? `${section}: ${text}` : text, colorOf(section || text)]));
    }
    drawSong(ctx);
    drawChords(ctx);
    drawInstrumental(ctx);
    drawShift(ctx);
    if (duration < view.end) {
      ctx.fillStyle = "rgba(0, 0, 0, 0.06)";
      ctx.fillRect(xAt(duration), 0, xAt(view.end) - xAt(duration), lanes.height);
    }
    drawLine(ctx, playhead(), COLORS.cursor, 1.5);
    if (hoverX !== null) drawLine(ctx, timeAt(hoverX), COLORS.hover, 1);
    ctx.restore();
    drawInstrumentalNames(ctx);
    drawOverview();
    document.getElementById("range").textContent =
      `${clock(Math.max(view.start, 0), true)} – ${clock(Math.min(view.end, duration), true)} (${span().toFixed(1)} s)`;
  }

  function drawLine(ctx, t, color, lineWidth) {
    if (t === null || t < view.start || t > view.end) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    ctx.moveTo(Math.round(xAt(t)) + 0.5, 0);
    ctx.lineTo(Math.round(xAt(t)) + 0.5, lanes.height);
    ctx.stroke();
  }

  function ticks(lo, hi, pixels, minGap) {
    const steps = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300];
    const step = steps.find((s) => (s / (hi - lo)) * pixels >= minGap) || 600;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(Number(t.toFixed(3)));
    return [out, step];
  }

  function drawTimeAxis(ctx) {
    const [top, bottom] = lanes.time;
    const [times, step] = ticks(view.start, view.end, plotWidth(), 80);
    ctx.font = SMALL;
    ctx.fillStyle = COLORS.laneText;
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    for (const t of times) {
      const x = Math.round(xAt(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, bottom - 5);
      ctx.lineTo(x, lanes.height);
      ctx.stroke();
      ctx.fillText(step < 1 ? clock(t, true).replace(/0+$/, "") : clock(t, false), x + 3, (top + bottom) / 2);
    }
    ctx.font = FONT;
    drawn.ticks = times.length;
  }

  function drawSpans(ctx, lane, spans) {
    const [top, bottom] = lanes[lane];
    let boxes = 0, labels = 0;
    for (const [a, b, label, color] of spans) {
      if (b <= view.start || a >= view.end) continue;
      const x0 = Math.max(xAt(a), LEFT), x1 = Math.min(xAt(b), LEFT + plotWidth());
      ctx.fillStyle = color;
      ctx.globalAlpha = 0.6;
      ctx.fillRect(x0, top + 1, x1 - x0 - 1, bottom - top - 2);
      ctx.globalAlpha = 1;
      boxes++;
      const text = shortened(ctx, label, x1 - x0);
      if (text) {
        ctx.fillStyle = "#222";
        ctx.fillText(text, (x0 + x1) / 2 - ctx.measureText(text).width / 2, (top + bottom) / 2);
        labels++;
      }
    }
    drawn[lane] = boxes;
    drawn[`${lane}Labels`] = labels;
  }

  function drawSong(ctx) {
    const [top, bottom] = lanes.song;
    const middle = (top + bottom) / 2 + 6, half = (bottom - top - 18) / 2;
    const { step, min, max } = data.envelope;
    ctx.fillStyle = COLORS.wave;
    for (let x = LEFT; x < LEFT + plotWidth(); x++) {
      const first = Math.floor(timeAt(x) / step), last = Math.max(first + 1, Math.ceil(timeAt(x + 1) / step));
      if (last <= 0 || first >= min.length) continue;
      let low = 1000, high = -1000;
      for (let i = Math.max(first, 0); i < Math.min(last, min.length); i++) {
        if (min[i] < low) low = min[i];
        if (max[i] > high) high = max[i];
      }
      const y0 = middle - (high / 1000) * half, y1 = middle - (low / 1000) * half;
      ctx.fillRect(x, y0, 1, Math.max(y1 - y0, 1));
    }
    // Beats only while they stay apart; the downbeats (red) always, numbered where they fit.
    const beats = data.beats.filter((t) => t >= view.start && t <= view.end);
    const beatGap = beats.length > 1 ? (xAt(beats[beats.length - 1]) - xAt(beats[0])) / (beats.length - 1) : Infinity;
    drawn.beats = beatGap >= 4 ? beats.length : 0;
    if (drawn.beats) marks(ctx, beats, top + 14, bottom, COLORS.beat, 1);
    const first = lastAtOrBefore(data.downbeats, view.start) + 1;
    const downbeats = data.downbeats.filter((t) => t >= view.start && t <= view.end);
    marks(ctx, downbeats, top + 12, lanes.chords[1], COLORS.downbeat, 1.5);
    drawn.downbeats = downbeats.length;
    const barGap = downbeats.length > 1 ? (xAt(downbeats[downbeats.length - 1]) - xAt(downbeats[0])) / (downbeats.length - 1) : Infinity;
    ctx.font = SMALL;
    ctx.fillStyle = COLORS.downbeat;
    const every = barGap >= 26 ? 1 : barGap * 4 >= 26 ? 4 : barGap * 16 >= 26 ? 16 : 0;
    drawn.barNumbers = 0;
    downbeats.forEach((t, k) => {
      const bar = first + k + 1;
      if (every && (bar - 1) % every === 0) {
        ctx.fillText(String(bar), xAt(t) + 3, top + 7);
        drawn.barNumbers++;
      }
    });
    ctx.font = FONT;
  }

  function marks(ctx, times, top, bottom, color, lineWidth, dash) {
    ctx.strokeStyle = color;
    ctx.lineWidth = lineWidth;
    ctx.setLineDash(dash || []);
    ctx.beginPath();
    for (const t of times) {
      const x = Math.round(xAt(t)) + 0.5;
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  function drawChords(ctx) {
    const [top, bottom] = lanes.chords;
    let boxes = 0, labels = 0;
    for (const [a, b, label] of data.chords) {
      if (b <= view.start || a >= view.end) continue;
      const x0 = xAt(a), x1 = xAt(b);
      ctx.fillStyle = COLORS.chord;
      ctx.fillRect(x0 + 0.5, top + 3, Math.max(x1 - x0 - 1, 1), bottom - top - 6);
      boxes++;
      // A label only where it fits its chord: never two over each other.
      const wide = ctx.measureText(label).width;
      const left = Math.max(x0, LEFT), right = Math.min(x1, LEFT + plotWidth());
      if (wide + 6 <= right - left) {
        ctx.fillStyle = "#123";
        ctx.fillText(label, (left + right) / 2 - wide / 2, (top + bottom) / 2);
        labels++;
      }
    }
    drawn.chords = boxes;
    drawn.chordLabels = labels;
  }

  function drawInstrumental(ctx) {
    const [top, bottom] = lanes.instrumental;
    const middle = (top + bottom) / 2;
    const song = data.downbeats.filter((t) => t >= view.start && t <= view.end);
    marks(ctx, song, top + 2, bottom - 2, COLORS.downbeat, 1, [2, 3]);
    const shown = [];
    data.generated.forEach((t, k) => {
      const moved = data.synced[k];
      if ((t >= view.start && t <= view.end) || (moved >= view.start && moved <= view.end)) shown.push([t, moved]);
    });
    marks(ctx, shown.map(([t]) => t), top + 3, middle - 3, COLORS.generated, 2);
    marks(ctx, shown.map(([, moved]) => moved), middle + 3, bottom - 3, COLORS.synced, 2);
    ctx.strokeStyle = COLORS.move;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [t, moved] of shown) {
      ctx.moveTo(xAt(t), middle - 3);
      ctx.lineTo(xAt(moved), middle + 3);
    }
    ctx.stroke();
    drawn.generated = shown.length;
  }

  function drawInstrumentalNames(ctx) {
    const [top, bottom] = lanes.instrumental;
    const middle = (top + bottom) / 2;
    ctx.font = SMALL;
    ctx.fillStyle = COLORS.generated;
    ctx.fillText("instr. as generated", 8, (top + middle) / 2);
    ctx.fillStyle = COLORS.synced;
    ctx.fillText("instr. after sync", 8, (middle + bottom) / 2);
    ctx.font = FONT;
  }

  function drawShift(ctx) {
    const [top, bottom] = lanes.shift;
    const [generated, remix] = data.warp;
    const middle = (top + bottom) / 2;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(LEFT, middle + 0.5);
    ctx.lineTo(LEFT + plotWidth(), middle + 0.5);
    ctx.stroke();
    if (!remix.length) {
      ctx.fillStyle = COLORS.laneText;
      ctx.fillText("not warped: the instrumental keeps its own timing", LEFT + 10, middle);
      drawn.anchors = 0;
      return;
    }
    const shifts = remix.map((t, k) => 1000 * (generated[k] - t));
    const range = Math.max(20, ...shifts.map(Math.abs));
    const yOf = (ms) => middle - (ms / range) * ((bottom - top) / 2 - 6);
    ctx.strokeStyle = COLORS.warp;
    ctx.fillStyle = COLORS.warp;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    remix.forEach((t, k) => (k ? ctx.lineTo(xAt(t), yOf(shifts[k])) : ctx.moveTo(xAt(t), yOf(shifts[k]))));
    ctx.stroke();
    let dots = 0;
    remix.forEach((t, k) => {
      if (t >= view.start && t <= view.end) {
        ctx.fillRect(xAt(t) - 1.5, yOf(shifts[k]) - 1.5, 3, 3);
        dots++;
      }
    });
    drawn.anchors = dots;
    ctx.font = SMALL;
    ctx.fillStyle = COLORS.laneText;
    ctx.fillText(`±${Math.round(range)} ms`, LEFT + 4, top + 8);
    ctx.font = FONT;
  }

  function drawOverview() {
    const height = 54;
    const ctx = fit(overview, height);
    const width = overview.clientWidth;
    const scale = (t) => LEFT + (t / duration) * (width - LEFT - RIGHT);
    ctx.clearRect(0, 0, width, height);
    for (const [a, b, label] of data.sections) {
      ctx.fillStyle = colorOf(label);
      ctx.globalAlpha = 0.45;
      ctx.fillRect(scale(a), 0, scale(b) - scale(a), height);
    }
    ctx.globalAlpha = 1;
    const { step, min, max } = data.envelope;
    ctx.fillStyle = COLORS.wave;
    const columns = width - LEFT - RIGHT;
    for (let x = 0; x < columns; x++) {
      const first = Math.floor((x / columns) * duration / step), last = Math.max(first + 1, Math.floor(((x + 1) / columns) * duration / step));
      let low = 1000, high = -1000;
      for (let i = first; i < Math.min(last, min.length); i++) {
        if (min[i] < low) low = min[i];
        if (max[i] > high) high = max[i];
      }
      if (high >= low) ctx.fillRect(LEFT + x, height / 2 - (high / 1000) * 22, 1, Math.max(((high - low) / 1000) * 22, 1));
    }
    ctx.fillStyle = COLORS.view;
    ctx.strokeStyle = "rgba(31, 119, 180, 0.8)";
    const x0 = scale(Math.max(view.start, 0)), x1 = scale(Math.min(view.end, duration));
    ctx.fillRect(x0, 0, x1 - x0, height);
    ctx.strokeRect(x0 + 0.5, 0.5, x1 - x0 - 1, height - 1);
    const t = playhead();
    if (t !== null) {
      ctx.fillStyle = COLORS.cursor;
      ctx.fillRect(scale(t), 0, 1.5, height);
    }
    ctx.fillStyle = COLORS.laneText;
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    ctx.fillText("whole song", 8, height / 2);
  }

  // --- hover -----------------------------------------------------------------------------------
  function describe(t) {
    const lines = [`<b>${clock(t, true)}</b>`];
    const beat = lastAtOrBefore(data.beats, t);
    if (beat >= 0) {
      const bar = lastAtOrBefore(data.downbeats, t) + 1;
      lines[0] += ` · bar ${bar}, beat ${data.beatPositions[beat]}`;
    }
    const chord = spanAt(data.chords, t);
    lines.push(chord ? `chord <b>${escape(chord[2])}</b> (${clock(chord[0], true)} – ${clock(chord[1], true)})` : "no chord");
    const section = spanAt(data.sections, t);
    if (section) lines.push(`section <b>${escape(section[2])}</b>`);
    const prompt = spanAt(data.prompts, t);
    if (prompt) lines.push(`prompt <b>${escape(prompt[3])}</b>${prompt[2] ? ` (${escape(prompt[2])})` : ""}`);
    if (data.synced.length) {
      let nearest = 0;
      data.synced.forEach((moved, k) => { if (Math.abs(moved - t) < Math.abs(data.synced[nearest] - t)) nearest = k; });
      const was = data.generated[nearest], now = data.synced[nearest];
      const ms = Math.round(1000 * (now - was));
      lines.push(`instrumental downbeat ${clock(was, true)} → ${clock(now, true)} (${ms > 0 ? "+" : ""}${ms} ms)`);
    }
    return lines.join("<br>");
  }
  function escape(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }
  function showTooltip(x, y) {
    tooltip.innerHTML = describe(timeAt(x));
    tooltip.hidden = false;
    const room = timeline.clientWidth - tooltip.offsetWidth - 4;
    tooltip.style.left = `${Math.min(x + 14, room)}px`;
    tooltip.style.top = `${Math.min(y + 14, lanes.height - tooltip.offsetHeight)}px`;
  }

  // --- view -----------------------------------------------------------------------------------
  function setView(start, end) {
    let width = Math.min(Math.max(end - start, MIN_SPAN), duration);
    start = Math.min(Math.max(start, 0), duration - width);
    view.start = start;
    view.end = start + width;
    draw();
  }
  const zoom = (factor, around) => {
    const t = around === undefined ? (view.start + view.end) / 2 : around;
    const width = Math.min(Math.max(span() * factor, MIN_SPAN), duration);
    setView(t - ((t - view.start) / span()) * width, t - ((t - view.start) / span()) * width + width);
  };

  // --- players --------------------------------------------------------------------------------
  function playhead() {
    const audio = players[active];
    if (!audio || (audio.paused && audio.currentTime === 0)) return null;
    return audio.currentTime * data.tracks[active].timescale;
  }
  function choose(index) {
    active = index;
    document.querySelectorAll(".player").forEach((row, k) => row.classList.toggle("active", k === index));
  }
  function seek(t) {
    const audio = players[active];
    if (!audio) return;
    audio.currentTime = Math.max(0, t / data.tracks[active].timescale);
    draw();
  }
  let following = false;
  function follow() {
    const t = playhead();
    if (t !== null && (t > view.end || t < view.start) && span() < duration) setView(t - span() * 0.1, t + span() * 0.9);
    else draw();
    if (following) requestAnimationFrame(follow);
  }
  players.forEach((audio, index) => {
    audio.addEventListener("play", () => {
      choose(index);
      players.forEach((other) => other !== audio && other.pause());
      following = true;
      requestAnimationFrame(follow);
    });
    audio.addEventListener("pause", () => { following = false; draw(); });
    audio.addEventListener("seeked", draw);
    audio.addEventListener("error", () => console.error(`player "${data.tracks[index].label}" cannot play its audio`));
  });

  // --- input ----------------------------------------------------------------------------------
  const local = (event, canvas) => {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  };
  let drag = null;
  timeline.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x] = local(event, timeline);
    zoom(Math.exp(event.deltaY * 0.0015), Math.min(Math.max(timeAt(x), 0), duration));
  }, { passive: false });
  timeline.addEventListener("mousedown", (event) => {
    drag = { x: local(event, timeline)[0], start: view.start, moved: false };
  });
  window.addEventListener("mousemove", (event) => {
    const [x, y] = local(event, timeline);
    if (drag) {
      const dx = x - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (drag.moved) setView(drag.start - (dx / plotWidth()) * span(), drag.start - (dx / plotWidth()) * span() + span());
    }
    const inside = x >= LEFT && x <= LEFT + plotWidth() && y >= 0 && y <= lanes.height;
    if (!inside && hoverX === null && !drag) return;  // elsewhere on the page: nothing to redraw
    hoverX = inside ? x : null;
    if (inside && !drag?.moved) showTooltip(x, y); else tooltip.hidden = true;
    if (!following) draw();
  });
  window.addEventListener("mouseup", (event) => {
    if (drag && !drag.moved) {
      const [x] = local(event, timeline);
      if (x >= LEFT) seek(Math.min(Math.max(timeAt(x), 0), duration));
    }
    drag = null;
  });
  timeline.addEventListener("mouseleave", () => { hoverX = null; tooltip.hidden = true; draw(); });
  timeline.addEventListener("dblclick", () => setView(0, duration));
  let overviewDrag = false;
  const centre = (event) => {
    const [x] = local(event, overview);
    const t = ((x - LEFT) / (overview.clientWidth - LEFT - RIGHT)) * duration;
    setView(t - span() / 2, t + span() / 2);
  };
  overview.addEventListener("mousedown", (event) => { overviewDrag = true; centre(event); });
  window.addEventListener("mousemove", (event) => overviewDrag && centre(event));
  window.addEventListener("mouseup", () => { overviewDrag = false; });
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(2));
  document.getElementById("zoom-fit").addEventListener("click", () => setView(0, duration));
  window.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("audio")) return;
    const keys = { "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2), "0": () => setView(0, duration),
      ArrowLeft: () => setView(view.start - span() / 4, view.end - span() / 4),
      ArrowRight: () => setView(view.start + span() / 4, view.end + span() / 4) };
    if (keys[event.key]) { keys[event.key](); event.preventDefault(); }
  });
  window.addEventListener("resize", draw);

  // --- start ----------------------------------------------------------------------------------
  document.getElementById("tempo").textContent = data.tempo;
  document.getElementById("legend").innerHTML =
    `<i style="background:${COLORS.beat}"></i>beats<i style="background:${COLORS.downbeat}"></i>downbeats (bar numbers)` +
    `<i style="background:rgba(31,119,180,0.5)"></i>chords<i style="background:${COLORS.generated}"></i>instrumental downbeats as generated` +
    `<i style="background:${COLORS.synced}"></i>after beat-sync<i style="background:${COLORS.warp}"></i>warp shift (generated minus remix time)`;
  choose(active);
  draw();
  // For tools and tests: what is on screen and how to reach it.
  window.analysisPage = { data, view, drawn, lanes, xAt, timeAt, setView, zoom, seek, describe,
    active: () => active, select: choose };
  document.body.dataset.ready = "true";
})();
