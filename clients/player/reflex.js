// A reflex round (`MiniGamePrompt`): "get ready" until the window opens in the server's
// world time, then a target to click (or Enter/Space) before it closes; the press
// claims its world time, a little behind the estimate so that it is never ahead of the
// server's clock, and is sent as `MiniGameInput` with the prompt's nonce.
import { $, n, show, words } from './dom.js';

export class Reflex {
  /** `worldNow()` gives the world time; `send(input)` sends a MiniGameInput. */
  constructor(worldNow, send) {
    this.worldNow = worldNow;
    this.send = send;
    this.prompt = null;
    this.timers = [];
    this.pressed = false;
    $('reflex-target').addEventListener('click', () => this.press());
  }

  /** The open round, or null. */
  set(prompt) {
    if (prompt === this.prompt) return;
    if (prompt !== null && this.prompt !== null && n(prompt.nonce) === n(this.prompt.nonce)) return;
    this.timers.forEach(clearTimeout);
    this.timers = [];
    this.prompt = prompt;
    this.pressed = false;
    const box = $('reflex');
    const target = $('reflex-target');
    if (prompt === null) {
      show(box, false);
      show(target, false);
      return;
    }
    show(box, true);
    show(target, false);
    target.dataset.round = String(prompt.round);
    $('reflex-title').textContent = `${words(prompt.game)}: round ${prompt.round} of ${prompt.rounds}. Get ready…`;
    const opens = n(prompt.opens_at_ms);
    const closes = n(prompt.closes_at_ms);
    const at = (t, f) => this.timers.push(setTimeout(f, Math.max(0, t - this.worldNow())));
    at(opens, () => {
      if (this.prompt !== prompt) return;
      $('reflex-title').textContent = `Round ${prompt.round} of ${prompt.rounds}: now!`;
      show(target, true);
      target.disabled = false;
      target.focus();
    });
    at(closes, () => {
      if (this.prompt !== prompt || this.pressed) return;
      show(target, false);
      $('reflex-title').textContent = `Round ${prompt.round}: too late.`;
    });
  }

  /** True while the target is up (Enter and Space press it). */
  get open() {
    return this.prompt !== null && !$('reflex-target').hidden && !this.pressed;
  }

  async press() {
    const p = this.prompt;
    if (p === null || this.pressed) return;
    this.pressed = true;
    const opens = n(p.opens_at_ms);
    const closes = n(p.closes_at_ms);
    const claim = Math.min(closes, Math.max(opens, this.worldNow() - 10));
    $('reflex-target').disabled = true;
    $('reflex-title').textContent = `Round ${p.round}: pressed.`;
    await this.send({ MiniGameInput: { round: p.round, nonce: p.nonce, client_time_ms: claim } });
  }
}
