// The stage: the node's media in a <video> (or an <img> for a still), played as the
// node's `Presentation.playback` says (normal, looping a segment, or progression steps
// that pause at each step's end), a title card for a node without media, the waiting
// state of a generation node, and the box the hotspots are laid over (the video's
// rendered picture, letterbox excluded).
//
// Media URLs: the content's own files (`/assets/…`) are public and streamed with Range
// requests straight into the <video>; generated media (`/api/v1/assets/{id}/file`) need
// the player's token, so they are fetched with it and played from a blob: URL.
import { $, show, words } from './dom.js';

/** The playback of a presentation, as `{mode, …}`. */
export function playbackOf(presentation) {
  const p = presentation?.playback;
  if (p === undefined || p === null || p === 'Normal') return { mode: 'normal' };
  if (typeof p === 'object' && 'Loop' in p) return { mode: 'loop', start: p.Loop.start_ms / 1000, end: p.Loop.end_ms / 1000 };
  if (typeof p === 'object' && 'Steps' in p) {
    const step = p.Steps.steps[p.Steps.current] ?? null;
    return { mode: 'steps', step, current: p.Steps.current, count: p.Steps.steps.length };
  }
  return { mode: 'normal' };
}

export class Stage {
  /**
   * `token()` gives the access token; `onEvent(kind, detail)` is told `pending`,
   * `media` and `step-end` (for the page's history and the Continue button).
   */
  constructor(token, onEvent) {
    this.token = token;
    this.onEvent = onEvent;
    this.video = $('video');
    this.still = $('still');
    this.key = null;
    this.blobUrl = null;
    this.playback = { mode: 'normal' };
    this.stepDone = false;
    this.pendingSince = null;
    /** The server's last figures for the pending media (`MediaProgress`), or null. */
    this.progress = null;
    this.layoutHooks = [];
    this.video.addEventListener('loadedmetadata', () => this.layout());
    this.still.addEventListener('load', () => this.layout());
    new ResizeObserver(() => this.layout()).observe($('stage'));
    this.video.addEventListener('ended', () => this.onEnded());
    const frame = () => {
      this.enforce();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    setInterval(() => this.pendingTick(), 250);
  }

  /** Shows the node: its media, its pending state, or a title card. */
  async showNode(position, presentation) {
    if (position === null) {
      this.clear();
      return;
    }
    const nodeKey = `${position.scene}/${position.node}`;
    if (position.media_pending) {
      if (this.key !== `pending:${nodeKey}`) {
        this.clear();
        this.key = `pending:${nodeKey}`;
        this.pendingSince = performance.now();
        this.progress = null;
        $('pending-status').textContent = "Rendering this scene's video…";
        show($('pending'), true);
        this.onEvent('pending', position.node);
      }
      return;
    }
    show($('pending'), false);
    this.pendingSince = null;
    if (position.media === null) {
      if (this.key !== `card:${nodeKey}`) {
        this.clear();
        this.key = `card:${nodeKey}`;
        $('card-text').textContent = words(position.node);
        show($('card'), true);
      }
      return;
    }
    const key = `media:${nodeKey}:${position.media.url}`;
    if (this.key === key) {
      this.setPresentation(presentation);
      return;
    }
    this.clear();
    this.key = key;
    await this.load(position.media, key);
    if (this.key !== key) return;
    this.setPresentation(presentation, true);
    this.onEvent('media', position.node);
  }

  /** Loads a media URL into the video or the still. */
  async load(media, key) {
    let src = media.url;
    let type = media.media_type;
    if (src.startsWith('/api/')) {
      const res = await fetch(src, { headers: { authorization: `Bearer ${this.token()}` } });
      if (!res.ok) throw new Error(`the media ${src} answered ${res.status}`);
      const blob = await res.blob();
      if (this.key !== key) return;
      if (blob.type.startsWith('image/')) type = 'image';
      this.blobUrl = URL.createObjectURL(blob);
      src = this.blobUrl;
    }
    if (type === 'image') {
      this.still.src = src;
      show(this.still, true);
      show(this.video, false);
    } else {
      show(this.video, true);
      show(this.still, false);
      this.video.src = src;
      this.video.load();
    }
  }

  /** Applies a node's presentation (again when a step moves on). */
  setPresentation(presentation, fresh = false) {
    const before = this.playback;
    const next = playbackOf(presentation);
    this.playback = next;
    this.loopable = presentation?.loopable ?? false;
    show($('skip'), (presentation?.skippable ?? false) && !this.video.hidden);
    const stepMoved = next.mode === 'steps' && (before.mode !== 'steps' || before.current !== next.current);
    if (fresh || stepMoved) {
      this.stepDone = false;
      if (next.mode === 'steps' && next.step !== null) this.video.currentTime = next.step.start_ms / 1000;
      this.video.loop = next.mode === 'normal' && this.loopable;
      if (!this.video.hidden) this.video.play().catch(() => {});
    }
    this.video.loop = next.mode === 'normal' && this.loopable;
  }

  /** Keeps the playing position inside the segment (every animation frame). */
  enforce() {
    const v = this.video;
    if (v.hidden || v.readyState < 1) return;
    const p = this.playback;
    if (p.mode === 'loop' && p.end > p.start && v.currentTime >= p.end) {
      v.currentTime = p.start;
    } else if (p.mode === 'steps' && p.step !== null && !this.stepDone && v.currentTime * 1000 >= p.step.end_ms) {
      v.pause();
      this.stepDone = true;
      this.onEvent('step-end', p);
    }
  }

  onEnded() {
    if (this.playback.mode === 'loop') {
      this.video.currentTime = this.playback.start;
      this.video.play().catch(() => {});
    } else if (this.playback.mode === 'steps' && !this.stepDone) {
      this.stepDone = true;
      this.onEvent('step-end', this.playback);
    }
  }

  /** Skip: to the end of the video, the loop's start, or the step's end. */
  skip() {
    const v = this.video;
    const p = this.playback;
    if (p.mode === 'loop') v.currentTime = p.start;
    else if (p.mode === 'steps' && p.step !== null) v.currentTime = p.step.end_ms / 1000;
    else if (Number.isFinite(v.duration)) v.currentTime = Math.max(0, v.duration - 0.05);
  }

  togglePause() {
    const v = this.video;
    if (v.paused) v.play().catch(() => {});
    else v.pause();
    return v.paused;
  }

  /**
   * The server's figures for the pending media of `scene`/`node` (a `MediaProgress`
   * event): its place in the queue and expected start, or how far the render is.
   */
  mediaProgress({ scene, node, progress, queue_position, estimated_start_unix_ms }) {
    if (this.key !== `pending:${scene}/${node}`) return;
    this.progress = { progress, queue_position, estimated_start_unix_ms };
    this.pendingTick();
  }

  pendingTick() {
    if (this.pendingSince === null) return;
    const s = (performance.now() - this.pendingSince) / 1000;
    const p = this.progress;
    if (p === null) {
      $('pending-time').textContent = `${s.toFixed(0)} s`;
      // No figure from the server yet: an easing bar that never reaches the end.
      $('pending-bar').style.width = `${(100 * (1 - Math.exp(-s / 8))).toFixed(1)}%`;
      return;
    }
    if (p.queue_position !== null && p.queue_position !== undefined) {
      $('pending-status').textContent = p.queue_position === 1
        ? 'Waiting to render: next in line'
        : `Waiting to render: place ${p.queue_position} in line`;
      const eta = p.estimated_start_unix_ms;
      $('pending-time').textContent = eta === null || eta === undefined
        ? `${s.toFixed(0)} s`
        : `starts in about ${Math.max(0, Math.round((Number(eta) - Date.now()) / 1000))} s`;
      $('pending-bar').style.width = '0%';
    } else {
      $('pending-status').textContent = "Rendering this scene's video…";
      $('pending-time').textContent = `${p.progress}% · ${s.toFixed(0)} s`;
      $('pending-bar').style.width = `${p.progress}%`;
    }
  }

  clear() {
    this.key = null;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.still.removeAttribute('src');
    show(this.video, false);
    show(this.still, false);
    show($('card'), false);
    show($('pending'), false);
    show($('skip'), false);
    this.pendingSince = null;
    this.playback = { mode: 'normal' };
    if (this.blobUrl !== null) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = null;
  }

  /** Lays the hotspot layer over the picture's rendered box (object-fit: contain). */
  layout() {
    const stage = $('stage');
    const W = stage.clientWidth;
    const H = stage.clientHeight;
    let [w, h] = [W, H];
    const media = !this.video.hidden ? [this.video.videoWidth, this.video.videoHeight] : !this.still.hidden ? [this.still.naturalWidth, this.still.naturalHeight] : [0, 0];
    if (media[0] > 0 && media[1] > 0) {
      const scale = Math.min(W / media[0], H / media[1]);
      [w, h] = [media[0] * scale, media[1] * scale];
    }
    const layer = $('hotspots');
    layer.style.left = `${(W - w) / 2}px`;
    layer.style.top = `${(H - h) / 2}px`;
    layer.style.width = `${w}px`;
    layer.style.height = `${h}px`;
  }
}
