// Small DOM helpers. Server data only ever reaches the page as text (textContent), never as HTML.

/** `el("td", {class: "x"}, "text", child)`: an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

/** `YYYY-MM-DD HH:MM:SS` in the browser's time zone, from epoch milliseconds; "–" for none. */
export function localTime(ms) {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** "CODE: message" for an ApiError or any other error. */
export function describeError(error) {
  return error && error.code ? `${error.code}: ${error.message}` : String((error && error.message) || error);
}
