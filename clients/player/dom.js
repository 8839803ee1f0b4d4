// Small DOM helpers shared by the player's modules (no innerHTML anywhere: every text
// the server sends is set as text).

/** The element with this id (throws when the page lacks it). */
export function $(id) {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e;
}

/** A new element with attributes (`class`, `data-*`, properties) and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

/** Shows or hides an element. */
export function show(e, visible) {
  e.hidden = !visible;
}

/** Replaces an element's children. */
export function fill(e, children) {
  e.replaceChildren(...children);
}

/** A status line in the header (`error` marks it red). */
export function status(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

/** A number of a decoded integer (bigint or number). */
export function n(v) {
  return typeof v === 'bigint' ? Number(v) : Number(v ?? 0);
}

/** `snake_case` as words. */
export function words(id) {
  const s = String(id).replace(/[_-]+/g, ' ').trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}
