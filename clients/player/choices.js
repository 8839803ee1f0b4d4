// The node's choices: buttons under the dialogue, or, for an edge a hotspot names,
// a button laid over the video at the hotspot's rectangle (ten-thousandths of the
// picture's width and height). A choice shows once revealed (`available_at_ms` against
// the server's world time); the revealed ones are numbered, and the number keys choose.
import { $, el, fill, n, show } from './dom.js';

export class Choices {
  /** `worldNow()` gives the server's world time; `choose(edge)` sends the choice. */
  constructor(worldNow, choose) {
    this.worldNow = worldNow;
    this.choose = choose;
    this.offer = [];
    this.hotspots = [];
    this.timer = null;
    this.busy = false;
    this.numbered = [];
    this.shown = '';
    /** Called after each render (the page hides an empty dialogue box). */
    this.onRender = () => {};
  }

  /** A new offer (the session's choices) and the node's hotspots. A choice in flight
   * stays in flight (its buttons disabled) until the offer itself changes: other
   * renders (media arriving, progress) must not re-enable them. */
  set(offer, hotspots) {
    if (offer !== this.offer) this.busy = false;
    this.offer = offer;
    this.hotspots = hotspots ?? [];
    this.render();
  }

  render() {
    clearTimeout(this.timer);
    const now = this.worldNow();
    const revealed = this.offer.filter((c) => n(c.available_at_ms) <= now);
    const later = this.offer.map((c) => n(c.available_at_ms)).filter((t) => t > now);
    if (later.length > 0) this.timer = setTimeout(() => this.render(), Math.min(...later) - now + 5);
    const spotOf = new Map(this.hotspots.map((h) => [h.edge, h]));
    const key = JSON.stringify([revealed.map((c) => c.edge), this.busy, this.hotspots.map((h) => h.id)]);
    if (key === this.shown) return;
    this.shown = key;
    this.numbered = revealed.map((c) => c.edge);
    const focused = document.activeElement?.dataset?.edge;
    const buttons = [];
    const spots = [];
    revealed.forEach((c, i) => {
      const label = c.label ?? c.edge;
      const spot = spotOf.get(c.edge);
      if (spot !== undefined) {
        const b = el(
          'button',
          { type: 'button', class: 'hotspot', 'data-edge': c.edge, 'data-hotspot': spot.id, disabled: this.busy, 'aria-label': `${i + 1}. ${spot.label ?? label}` },
          el('span', { class: 'key' }, String(i + 1)),
          el('span', { class: 'hotspot-label' }, spot.label ?? label),
        );
        b.style.left = `${spot.x / 100}%`;
        b.style.top = `${spot.y / 100}%`;
        b.style.width = `${spot.w / 100}%`;
        b.style.height = `${spot.h / 100}%`;
        spots.push(b);
      } else {
        buttons.push(
          el(
            'li',
            {},
            el(
              'button',
              { type: 'button', class: 'choice', 'data-edge': c.edge, disabled: this.busy },
              el('span', { class: 'key' }, String(i + 1)),
              label,
            ),
          ),
        );
      }
    });
    fill($('choices'), buttons);
    fill($('hotspots'), spots);
    for (const b of [...buttons.map((li) => li.firstChild), ...spots]) {
      b.addEventListener('click', () => this.pick(b.dataset.edge));
    }
    const hidden = this.offer.length - revealed.length;
    $('waiting').textContent = revealed.length === 0 && hidden > 0 ? 'Choices appear soon…' : '';
    show($('waiting'), revealed.length === 0 && hidden > 0);
    this.onRender();
    // Keep the keyboard where it was, or bring it to the first choice.
    const again = focused && document.querySelector(`[data-edge="${CSS.escape(focused)}"]`);
    if (again) again.focus();
    else if (!this.busy && (document.activeElement === document.body || document.activeElement === null)) {
      document.querySelector('#choices button, #hotspots button')?.focus();
    }
  }

  /** The number key `k` (1-based) chooses the k-th revealed choice. */
  key(k) {
    const edge = this.numbered[k - 1];
    if (edge === undefined) return false;
    this.pick(edge);
    return true;
  }

  async pick(edge) {
    if (this.busy) return;
    this.busy = true;
    this.render();
    const ok = await this.choose(edge);
    if (!ok) {
      this.busy = false;
      this.render();
    }
  }
}
