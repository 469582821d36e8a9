// Building the DOM without innerHTML: every text from the API goes in as a text node, so nothing an
// operator or a device sends can become markup or script.

/**
 * h('tag.class#id', {attrs, on: {click}}, ...children). Attributes: class, id, data-*, aria-*, type, ...
 * `style` is refused on purpose (the CSP allows no inline style): use classes.
 */
export function h(tag, attrs, ...children) {
  // 'tag.class1.class2#id' (in any order after the tag name)
  const parts = tag.split(/(?=[.#])/);
  const el = document.createElement(parts[0]);
  const classes = [];
  for (const p of parts.slice(1)) {
    if (p[0] === '#') el.id = p.slice(1);
    else classes.push(p.slice(1));
  }
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = undefined;
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'style') throw new Error('inline styles are not allowed by the CSP: use a class');
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}
