// Small DOM helpers: element building, keyed list updates that keep the
// keyboard focus, dates, downloads and the status line.

// h builds an element: h('button', {class: 'x', onclick: f}, 'text', child).
// Attributes that are false, null or undefined are left out; children that
// are false, null or undefined too, and arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'open') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === false || c === null || c === undefined) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// reconcile makes parent's children the rendering of items, in order. Each
// item has a key (keyOf) and a signature (sigOf): an element whose item
// keeps its signature is kept as it is, so that updates do not disturb the
// one the keyboard is on; a changed one is rendered again, and the focus
// moves to its element with the same data-act, if it had the focus.
export function reconcile(parent, items, keyOf, sigOf, render) {
  const old = new Map();
  for (const el of parent.children) if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
  let i = 0;
  for (const it of items) {
    const key = String(keyOf(it));
    const sig = sigOf(it);
    let el = old.get(key);
    old.delete(key);
    if (!el || el._sig !== sig) {
      const fresh = render(it);
      fresh.dataset.key = key;
      fresh._sig = sig;
      if (el) {
        const act = el.contains(document.activeElement) && document.activeElement.dataset.act;
        el.replaceWith(fresh);
        if (act) fresh.querySelector(`[data-act="${act}"]`)?.focus();
      }
      el = fresh;
    }
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
    i++;
  }
  for (const el of old.values()) el.remove();
}

// byName compares two names as a person sorts them.
export const byName = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true }).compare;

export function fmtTime(t) {
  const d = new Date(t);
  if (isNaN(d)) return '';
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function fmtDate(t) {
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? '' : d.toLocaleDateString([], { year: 'numeric', month: 'long', day: 'numeric' });
}

// download hands text to the browser as a file.
export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// say puts one sentence in the status line, which screen readers read out.
export function say(text, error) {
  const el = document.getElementById('status');
  el.textContent = text || '';
  el.classList.toggle('error', !!error);
  el.hidden = !text;
}
