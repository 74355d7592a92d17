// A live line chart on SVG: the last `points` values, scaled to the largest, with the
// axis maximum written at the top. No dependency; made for the admin page.

const SVG = 'http://www.w3.org/2000/svg';

/** Makes an SVG element with attributes. */
function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/** A "nice" axis maximum at or above `value`: 1, 2 or 5 times a power of ten. */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

export class LineChart {
  /**
   * @param {SVGSVGElement} svg the chart's element (its viewBox gives the size)
   * @param {{ points?: number, className?: string }} options `className` tells this
   *   chart's line and area apart (for their colours)
   */
  constructor(svg, { points = 60, className = '' } = {}) {
    this.svg = svg;
    this.points = points;
    this.values = [];
    const box = svg.viewBox.baseVal;
    this.width = box && box.width ? box.width : 400;
    this.height = box && box.height ? box.height : 120;
    this.grid = element('g', { class: 'grid' });
    this.area = element('path', { class: `area ${className}` });
    this.line = element('polyline', { class: `line ${className}`, fill: 'none' });
    this.label = element('text', { x: 4, y: 12, class: 'axis' });
    svg.append(this.grid, this.area, this.line, this.label);
    for (const fraction of [0.25, 0.5, 0.75]) {
      const y = this.height * fraction;
      this.grid.append(element('line', { x1: 0, x2: this.width, y1: y, y2: y }));
    }
    this.draw();
  }

  /** Adds a value (the oldest one drops off once there are `points`) and redraws. */
  push(value) {
    this.values.push(Number.isFinite(value) ? value : 0);
    if (this.values.length > this.points) this.values.shift();
    this.draw();
  }

  draw() {
    const max = niceMax(Math.max(0, ...this.values));
    const step = this.width / Math.max(1, this.points - 1);
    const top = 16;
    const offset = this.points - this.values.length;
    const coordinates = this.values.map((value, i) => {
      const x = (offset + i) * step;
      const y = this.height - (value / max) * (this.height - top);
      return [x.toFixed(1), y.toFixed(1)];
    });
    this.line.setAttribute('points', coordinates.map((c) => c.join(',')).join(' '));
    if (coordinates.length > 1) {
      const first = coordinates[0][0];
      const last = coordinates[coordinates.length - 1][0];
      this.area.setAttribute(
        'd',
        `M${first},${this.height} L${coordinates.map((c) => c.join(',')).join(' L')} L${last},${this.height} Z`,
      );
    }
    this.label.textContent = `max ${max}`;
    this.svg.dataset.points = String(this.values.length);
  }
}
