/*
 * The report page's address-space map (inlined into the report by src/report/html.ts; plain
 * browser JavaScript, no build step, no network).
 *
 * Holds: decodeMap() (the compact columns of src/report/encode.ts back into typed arrays) and
 * AddressMap (a canvas that draws a window of the address space, zoomable from the whole
 * window down to single pages).
 * Invariant: drawing aggregates by pixel: the canvas is a raster of W x H pixels laid out row
 * by row over the view's pages, each range only marks the pixels it covers, and a redraw
 * costs O(pixels + ranges in view), whatever the number of areas; no DOM node per area.
 * Where several classes meet in a pixel, the later class in CLASSES wins (busy over lazy over
 * pooled over free); a pixel only partly covered is blended toward the free colour.
 */
/* global atob, Blob, DecompressionStream, Response, ImageData, requestAnimationFrame, performance */

(function () {
  'use strict';

  /** Same order as CLASSES in encode.ts; the code of a class in a pixel is its index + 1. */
  var CLASSES = ['free', 'other', 'pooled', 'lazy', 'busy', 'vmapBlocks'];
  var LABELS = {
    free: 'free',
    other: 'block margin',
    pooled: 'pooled (ready in a node pool)',
    lazy: 'lazily freed (unpurged)',
    busy: 'busy',
    vmapBlocks: 'vmap block (vm_map_ram)',
  };
  var KIND_COLORS = {
    vmalloc: [59, 110, 200],
    vmap: [46, 160, 90],
    ioremap: [230, 140, 30],
    sparse: [160, 110, 60],
    reserved: [20, 150, 160],
    pcpu: [140, 90, 50],
    vm_map_ram: [220, 80, 150],
    vmap_block: [130, 70, 190],
    uninitialized: [120, 120, 120],
  };
  var FREE_RGB = [234, 234, 234];
  var OUTSIDE_RGB = [255, 255, 255];

  async function inflate(b64) {
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** One class: start/end in pages from the window's start, node (-1 none), extra columns. */
  async function decodeClass(enc) {
    var n = enc.count;
    var bytes = await inflate(enc.data);
    var cols = [];
    var at = 0;
    for (var c = 0; c < enc.columns; c++) {
      var col = new Float64Array(n);
      for (var k = 0; k < n; k++) {
        var v = 0;
        var scale = 1;
        for (;;) {
          var b = bytes[at++];
          v += (b & 127) * scale;
          if (b < 128) break;
          scale *= 128;
        }
        col[k] = v;
      }
      cols.push(col);
    }
    var start = cols[0];
    var end = new Float64Array(n);
    var node = new Int32Array(n);
    var prev = 0;
    for (var j = 0; j < n; j++) {
      start[j] = prev + start[j];
      end[j] = start[j] + cols[1][j];
      prev = Math.max(prev, end[j]);
      node[j] = cols[2][j] - 1;
    }
    return { count: n, start: start, end: end, node: node, extra: cols.slice(3) };
  }

  async function decodeMap(m) {
    var out = { meta: m, pages: (m.window.end - m.window.start) / m.pageSize, classes: {} };
    for (var i = 0; i < CLASSES.length; i++) {
      out.classes[CLASSES[i]] = await decodeClass(m.classes[CLASSES[i]]);
    }
    return out;
  }

  /** The first range of `r` whose end is past page `p` (binary search). */
  function firstEndingAfter(r, p) {
    var lo = 0;
    var hi = r.count;
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (r.end[mid] <= p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function hueRgb(h, s, l) {
    // HSL to RGB, h in degrees, s and l in 0..1
    var a = s * Math.min(l, 1 - l);
    var f = function (n) {
      var k = (n + h / 30) % 12;
      return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    };
    return [f(0), f(8), f(4)];
  }

  /** The colour of a node (or a cpu): hues spread by the golden angle. */
  function nodeHue(n) {
    return (n * 137.508 + 210) % 360;
  }

  function kernelHex(addr) {
    // Library addresses are below 2^48; the kernel's is KERNEL_BASE (0xffff << 48) plus it.
    return '0xffff' + Math.floor(addr).toString(16).padStart(12, '0');
  }

  function bytesText(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var u = 0;
    while (n >= 1024 && u < units.length - 1) {
      n /= 1024;
      u++;
    }
    return (n >= 100 || u === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[u];
  }

  function AddressMap(canvas, map, colorBy) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.map = map;
    this.colorBy = colorBy;
    this.view = { start: 0, end: map.pages };
    this.drawCount = 0;
    this.lastDrawMs = 0;
    this.onchange = null;
    this.pending = false;
    this.colorCache = new Map();
  }

  /** Smallest view: a page is 64 pixels wide. */
  AddressMap.prototype.minSpan = function () {
    return Math.max(1, (this.canvas.width * this.canvas.height) / 64);
  };

  AddressMap.prototype.setView = function (start, end) {
    var total = this.map.pages;
    var span = Math.min(total, Math.max(end - start, this.minSpan()));
    var s = Math.max(0, Math.min(start, total - span));
    this.view = { start: s, end: s + span };
    this.requestDraw();
  };

  AddressMap.prototype.zoom = function (factor, atPage) {
    var v = this.view;
    var p = atPage === undefined ? (v.start + v.end) / 2 : atPage;
    this.setView(p - (p - v.start) * factor, p + (v.end - p) * factor);
  };

  AddressMap.prototype.requestDraw = function () {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(
      function () {
        this.pending = false;
        this.draw();
      }.bind(this),
    );
  };

  AddressMap.prototype.rgbOf = function (code, node, kind) {
    var key = code * 1e6 + (node + 1) * 64 + kind;
    var c = this.colorCache.get(key);
    if (c !== undefined) return c;
    var cls = CLASSES[code - 1];
    var byKind = this.colorBy === 'kind' || node < 0;
    if (cls === 'free') c = node < 0 ? FREE_RGB : hueRgb(nodeHue(node), 0.35, 0.88);
    else if (cls === 'other') c = [150, 150, 150];
    else if (cls === 'busy')
      c = byKind
        ? KIND_COLORS[this.map.meta.kinds[kind]] || [90, 90, 90]
        : hueRgb(nodeHue(node), 0.7, 0.45);
    else if (cls === 'lazy') c = node < 0 ? [240, 170, 170] : hueRgb(nodeHue(node), 0.7, 0.78);
    else if (cls === 'pooled') c = node < 0 ? [120, 90, 60] : hueRgb(nodeHue(node), 0.45, 0.28);
    else c = hueRgb(nodeHue(node), 0.9, 0.6); // vmap blocks: by cpu
    this.colorCache.set(key, c);
    return c;
  };

  /** Draws the view: each pixel gets the top class among the ranges covering it. */
  AddressMap.prototype.draw = function () {
    var t0 = performance.now();
    var w = this.canvas.width;
    var h = this.canvas.height;
    var npix = w * h;
    var v = this.view;
    var ppp = (v.end - v.start) / npix; // pages per pixel
    var code = new Uint8Array(npix);
    var node = new Int16Array(npix);
    var kind = new Uint8Array(npix);
    var cover = new Float32Array(npix); // share of the pixel covered by its class's ranges
    var edge = new Uint8Array(npix);
    var pixelsInWindow = Math.min(npix, Math.ceil((this.map.pages - v.start) / ppp));
    var drawn = {};
    for (var ci = 0; ci < CLASSES.length; ci++) {
      var r = this.map.classes[CLASSES[ci]];
      var isBusy = CLASSES[ci] === 'busy';
      var isBlock = CLASSES[ci] === 'vmapBlocks';
      var count = 0;
      for (var k = firstEndingAfter(r, v.start); k < r.count && r.start[k] < v.end; k++) {
        count++;
        var s = (r.start[k] - v.start) / ppp;
        var e = (r.end[k] - v.start) / ppp;
        var p0 = Math.max(0, Math.floor(s));
        var p1 = Math.min(npix, Math.ceil(e));
        if (p1 <= p0) p1 = Math.min(npix, p0 + 1);
        var n = isBlock ? r.extra[0][k] : r.node[k];
        var kd = isBusy ? r.extra[0][k] : 0;
        for (var p = p0; p < p1; p++) {
          var part = Math.min(e, p + 1) - Math.max(s, p);
          if (code[p] !== ci + 1) {
            code[p] = ci + 1;
            cover[p] = 0;
          }
          cover[p] += part;
          node[p] = n;
          kind[p] = kd;
        }
        if ((isBusy || isBlock) && p1 - p0 >= 4) edge[p0] = 1;
      }
      drawn[CLASSES[ci]] = count;
    }
    var img = new ImageData(w, h);
    var px = img.data;
    for (var q = 0; q < npix; q++) {
      var rgb;
      if (q >= pixelsInWindow) rgb = OUTSIDE_RGB;
      else if (code[q] === 0) rgb = FREE_RGB;
      else rgb = this.rgbOf(code[q], node[q], kind[q]);
      var f = code[q] > 1 ? Math.max(0.4, Math.min(1, cover[q])) : 1;
      var dark = edge[q] === 1 ? 0.6 : 1;
      px[q * 4] = (rgb[0] * f + FREE_RGB[0] * (1 - f)) * dark;
      px[q * 4 + 1] = (rgb[1] * f + FREE_RGB[1] * (1 - f)) * dark;
      px[q * 4 + 2] = (rgb[2] * f + FREE_RGB[2] * (1 - f)) * dark;
      px[q * 4 + 3] = 255;
    }
    this.ctx.putImageData(img, 0, 0);
    this.drawCount++;
    this.drawn = drawn;
    this.lastDrawMs = performance.now() - t0;
    if (this.onchange) this.onchange();
  };

  /** The page (from the window's start) under pixel (x, y). */
  AddressMap.prototype.pageAt = function (x, y) {
    var w = this.canvas.width;
    var npix = w * this.canvas.height;
    var ppp = (this.view.end - this.view.start) / npix;
    return this.view.start + (Math.floor(y) * w + Math.floor(x) + 0.5) * ppp;
  };

  /** The pixel of library address `addr`, or null when it is out of the view. */
  AddressMap.prototype.pixelOf = function (addr) {
    var m = this.map.meta;
    var pg = (addr - m.window.start) / m.pageSize;
    var w = this.canvas.width;
    var npix = w * this.canvas.height;
    var p = Math.floor(((pg - this.view.start) / (this.view.end - this.view.start)) * npix);
    if (p < 0 || p >= npix) return null;
    return { x: p % w, y: Math.floor(p / w) };
  };

  /** What lies at a page: the top class's range, described. */
  AddressMap.prototype.describe = function (pg) {
    for (var ci = CLASSES.length - 1; ci >= 0; ci--) {
      var r = this.map.classes[CLASSES[ci]];
      var k = firstEndingAfter(r, pg);
      if (k >= r.count || r.start[k] > pg) continue;
      return this.segment(CLASSES[ci], k);
    }
    return null;
  };

  AddressMap.prototype.segment = function (cls, k) {
    var m = this.map.meta;
    var r = this.map.classes[cls];
    var seg = {
      class: cls,
      label: LABELS[cls],
      start: m.window.start + r.start[k] * m.pageSize,
      size: (r.end[k] - r.start[k]) * m.pageSize,
      node: r.node[k],
    };
    if (cls === 'busy') {
      seg.kind = m.kinds[r.extra[0][k]];
      seg.caller = m.callers[r.extra[1][k]];
    }
    if (cls === 'vmapBlocks') {
      seg.cpu = r.extra[0][k];
      seg.usedPages = r.extra[1][k];
      seg.dirtyPages = r.extra[2][k];
    }
    return seg;
  };

  /** The ranges in the view, class by class (at most `limit`), for tests and the legend. */
  AddressMap.prototype.segments = function (limit) {
    var out = [];
    var v = this.view;
    for (var ci = 0; ci < CLASSES.length; ci++) {
      var r = this.map.classes[CLASSES[ci]];
      for (var k = firstEndingAfter(r, v.start); k < r.count && r.start[k] < v.end; k++) {
        if (out.length >= limit) return out;
        out.push(this.segment(CLASSES[ci], k));
      }
    }
    return out;
  };

  globalThis.vmReportMap = {
    CLASSES: CLASSES,
    LABELS: LABELS,
    KIND_COLORS: KIND_COLORS,
    FREE_RGB: FREE_RGB,
    decodeMap: decodeMap,
    AddressMap: AddressMap,
    kernelHex: kernelHex,
    bytesText: bytesText,
    hueRgb: hueRgb,
    nodeHue: nodeHue,
  };
})();
