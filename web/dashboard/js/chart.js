// Outcomes over time: cumulative completed / failed / cancelled and current active, as an inline SVG.

const SERIES = [
  ["completed", "#2e9e5b"],
  ["failed", "#d64541"],
  ["cancelled", "#9aa3ad"],
  ["active", "#e5a50a"],
];
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Keeps samples of a batch's counts and draws them. */
export class OutcomeChart {
  constructor(svg) {
    this.svg = svg;
    this.samples = [];
    window.addEventListener("resize", () => this.draw());
  }

  reset() {
    this.samples = [];
    this.draw();
  }

  add(counts, at = Date.now()) {
    const last = this.samples[this.samples.length - 1];
    const same = last && SERIES.every(([key]) => last[key] === counts[key]);
    if (same && at - last.at < 5000) return;
    this.samples.push({ at, total: counts.total, ...Object.fromEntries(SERIES.map(([k]) => [k, counts[k] || 0])) });
    if (this.samples.length > 600) this.samples.splice(0, this.samples.length - 600);
    this.draw();
  }

  draw() {
    const svg = this.svg;
    // Draw in the element's own pixel width so text is never stretched or squeezed.
    const width = Math.max(320, Math.round(svg.clientWidth || 640));
    const height = 180, left = 36, right = 10, top = 10, bottom = 22;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const samples = this.samples;
    const maxY = Math.max(1, ...samples.map((s) => s.total || 0), ...samples.map((s) => s.completed + s.failed));
    const t0 = samples.length ? samples[0].at : 0;
    const t1 = samples.length ? Math.max(samples[samples.length - 1].at, t0 + 1000) : 1;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
    const y = (v) => top + (1 - v / maxY) * (height - top - bottom);
    for (const frac of [0, 0.5, 1]) {
      const value = Math.round(maxY * frac);
      svg.append(el("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#e3e7ec" }));
      svg.append(el("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", "font-size": 10, fill: "#66707c" }, value));
    }
    const seconds = Math.round((t1 - t0) / 1000);
    svg.append(el("text", { x: width - right, y: height - 6, "text-anchor": "end", "font-size": 10, fill: "#66707c" }, `${seconds}s`));
    svg.append(el("text", { x: left, y: height - 6, "font-size": 10, fill: "#66707c" }, "0s"));
    if (!samples.length) {
      svg.append(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#66707c" }, "waiting for calls…"));
      return;
    }
    SERIES.forEach(([key, color], index) => {
      const points = samples.map((s) => `${x(s.at).toFixed(1)},${y(s[key]).toFixed(1)}`).join(" ");
      svg.append(el("polyline", { points, fill: "none", stroke: color, "stroke-width": 2, "data-series": key }));
      const legendX = left + 8 + index * 90;
      svg.append(el("rect", { x: legendX, y: top + 2, width: 10, height: 10, fill: color }));
      svg.append(el("text", { x: legendX + 14, y: top + 11, "font-size": 11, fill: "#1d232b" }, key));
    });
  }
}
