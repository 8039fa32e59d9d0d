// Shared by the pages. Everything from the store is put into the page as
// text (text nodes, textContent, attribute values): never as markup.
"use strict";

/** An element with attributes and children (strings become text). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a node's children. */
function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** GET or POST JSON; throws an Error carrying the API's message and hint. */
async function api(path, body) {
  const init = body === undefined
    ? { headers: { Accept: "application/json" } }
    : { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body) };
  const response = await fetch("/api/v1" + path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const e = (data && data.error) || { message: response.status + " " + response.statusText };
    const error = new Error(e.message + (e.hint ? " (" + e.hint + ")" : ""));
    error.status = response.status;
    throw error;
  }
  return data;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms === 0) return "0 ms";
  if (ms < 1) return ms.toFixed(3) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + Math.round(s % 60) + "s";
  return Math.floor(m / 60) + "h " + (m % 60) + "m";
}

function when(text) {
  if (!text) return "-";
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

function badge(status) {
  return el("span", { class: "status " + status }, status);
}

function showError(node, error) {
  fill(node, error ? el("div", { class: "error" }, String(error.message || error)) : null);
}
