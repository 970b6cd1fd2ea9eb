// The server's media rules (server/media/images.py, videos.py), checked in the browser first.
// The numbers come from GET /web/models; the messages are the API's own, word for word, in the
// order the server checks, so a rejected file reads the same here as in an API error.

const MB = 1024 * 1024;
const ASPECT_SLACK = 1e-9;

/** Python's `{:g}` for the numbers the rules use (2.5, 20, 0.4). */
function g(x) {
  return String(Number(x.toPrecision(6)));
}

function mb(n) {
  return `${g(n / MB)} MB`;
}

function bytesAt(view, offset, length) {
  return Array.from(new Uint8Array(view.buffer, view.byteOffset + offset, length));
}

function sniffImage(view) {
  const head = bytesAt(view, 0, Math.min(12, view.byteLength));
  const ascii = (a, b) => String.fromCharCode(...head.slice(a, b));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (head.length >= 8 && head.slice(0, 8).join() === [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].join()) return "png";
  if (head.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  return null;
}

function pngSize(view) {
  if (view.byteLength < 24) return null;
  return [view.getUint32(16), view.getUint32(20)];
}

function webpSize(view) {
  if (view.byteLength < 30) return null;
  const chunk = String.fromCharCode(...bytesAt(view, 12, 4));
  const le24 = (o) => view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getUint8(o + 2) << 16);
  if (chunk === "VP8X") return [1 + le24(24), 1 + le24(27)];
  if (chunk === "VP8L" && view.getUint8(20) === 0x2f) {
    const bits = view.getUint32(21, true);
    return [1 + (bits & 0x3fff), 1 + ((bits >>> 14) & 0x3fff)];
  }
  if (chunk === "VP8 " && view.getUint8(23) === 0x9d && view.getUint8(24) === 0x01 && view.getUint8(25) === 0x2a) {
    return [view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff];
  }
  return null;
}

function jpegSize(view) {
  // Walk the segments to the first start-of-frame marker (SOF0..SOF15 but DHT, JPG, DAC).
  let at = 2;
  while (at + 9 < view.byteLength) {
    if (view.getUint8(at) !== 0xff) return null;
    const marker = view.getUint8(at + 1);
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    const length = view.getUint16(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return [view.getUint16(at + 7), view.getUint16(at + 5)];
    }
    at += 2 + length;
  }
  return null;
}

const SIZE_READERS = { jpeg: jpegSize, png: pngSize, webp: webpSize };

function aspectMessage(width, height, lo, hi, prefix, got) {
  if (hi === null) hi = Infinity;
  const aspect = width / height;
  if (aspect < lo - ASPECT_SLACK || aspect > hi + ASPECT_SLACK) {
    const bounds = lo > 0 ? `1:${g(1 / lo)} and ${g(hi)}:1` : `0 and ${g(hi)}:1`;
    return `${prefix} aspect ratio (width:height) must be between ${bounds}, ${got}`;
  }
  return null;
}

function sizeMessage(width, height, rule, where) {
  const got = `got ${width}x${height}`;
  if (width < rule.min_width || height < rule.min_height) {
    const need =
      rule.min_width === rule.min_height
        ? `width and height must be at least ${rule.min_width} px`
        : `width must be at least ${rule.min_width} px and height at least ${rule.min_height} px`;
    return `${where}: image ${need}, ${got}`;
  }
  if (Math.min(width, height) < rule.min_short_side) {
    return `${where}: image short side must be at least ${rule.min_short_side} px, ${got}`;
  }
  return aspectMessage(width, height, rule.min_aspect, rule.max_aspect, `${where}: image`, got);
}

/** The API's message for an image that breaks `rule`, or null when it passes. */
export async function checkImage(file, rule, where) {
  const view = new DataView(await file.slice(0, Math.min(file.size, rule.max_bytes + 1)).arrayBuffer());
  const format = sniffImage(view);
  if (format === null) return `${where}: image must be JPEG, PNG or WEBP`;
  if (file.size > rule.max_bytes) return `${where}: image file size must be at most ${mb(rule.max_bytes)}`;
  const size = SIZE_READERS[format](view);
  if (size === null) {
    return format === "webp" ? `${where}: image could not be decoded (bad WEBP header)` : `${where}: image could not be decoded`;
  }
  const [width, height] = size;
  if (width * height > rule.max_pixels) {
    return `${where}: image is ${width}x${height} (${width * height} pixels), more than the ${rule.max_pixels} pixels allowed`;
  }
  const broken = sizeMessage(width, height, rule, where);
  if (broken) return broken;
  try {
    (await createImageBitmap(file)).close();
  } catch {
    return `${where}: image could not be decoded (truncated or corrupt)`;
  }
  return null;
}

const QT_FIRST_ATOMS = new Set(["moov", "mdat", "wide", "free", "skip", "pnot"]);

function sniffContainer(view) {
  if (view.byteLength < 12) return null;
  const box = String.fromCharCode(...bytesAt(view, 4, 4));
  if (box === "ftyp") return String.fromCharCode(...bytesAt(view, 8, 4)) === "qt  " ? "mov" : "mp4";
  return QT_FIRST_ATOMS.has(box) ? "mov" : null;
}

function videoMetadata(file) {
  return new Promise((resolve) => {
    const video = document.createElement("video");
    const url = URL.createObjectURL(file);
    const done = (value) => {
      URL.revokeObjectURL(url);
      video.removeAttribute("src");
      resolve(value);
    };
    video.preload = "metadata";
    video.onloadedmetadata = () => done({ duration: video.duration, width: video.videoWidth, height: video.videoHeight });
    video.onerror = () => done(null);
    video.src = url;
  });
}

/**
 * The API's message for a video that breaks `rule`, or null. What this browser cannot read (a
 * codec it does not play, the frame rate) is left to the server, which checks everything again.
 */
export async function checkVideo(file, rule, where) {
  const view = new DataView(await file.slice(0, 12).arrayBuffer());
  if (sniffContainer(view) === null) return `${where}: video must be MP4 or MOV`;
  if (file.size > rule.max_bytes) return `${where}: video file size must be at most ${mb(rule.max_bytes)}`;
  const meta = await videoMetadata(file);
  if (meta === null || !Number.isFinite(meta.duration) || !meta.width) return null;
  const { duration, width, height } = meta;
  const got = `got ${width}x${height}`;
  if (duration < rule.min_duration_s || duration > rule.max_duration_s) {
    return `${where}: video duration must be ${g(rule.min_duration_s)} to ${g(rule.max_duration_s)} s, got ${duration.toFixed(2)} s`;
  }
  if (Math.max(width, height) > rule.max_long_side) {
    return `${where}: video long side must be at most ${rule.max_long_side} px, ${got}`;
  }
  if (Math.min(width, height) < rule.min_short_side) {
    return `${where}: video short side must be at least ${rule.min_short_side} px, ${got}`;
  }
  return aspectMessage(width, height, rule.min_aspect, rule.max_aspect, `${where}: video`, got);
}

/** The API's message when a family gets too few or too many of one media type, or null. */
export function countMessage(family, type, low, high, count) {
  if (count >= low && count <= high) return null;
  const want = low === high ? `exactly ${low}` : `${low} to ${high}`;
  return `input.media: ${family} models take ${want} ${type}, got ${count}.`;
}

/** A one-line summary of an image rule, for the help text under a file input. */
export function describeImage(rule) {
  const parts = ["JPEG, PNG or WEBP"];
  if (rule.min_width) parts.push(`at least ${rule.min_width} px wide and ${rule.min_height} px high`);
  if (rule.min_short_side) parts.push(`short side at least ${rule.min_short_side} px`);
  if (rule.max_aspect !== null) parts.push(`aspect between 1:${g(1 / rule.min_aspect)} and ${g(rule.max_aspect)}:1`);
  parts.push(`at most ${mb(rule.max_bytes)}`);
  return `${parts.join("; ")}.`;
}

/** A one-line summary of the video rule. */
export function describeVideo(rule) {
  return (
    `MP4 or MOV; ${g(rule.min_duration_s)} to ${g(rule.max_duration_s)} s; short side at least ` +
    `${rule.min_short_side} px, long side at most ${rule.max_long_side} px; at most ${mb(rule.max_bytes)}.`
  );
}
