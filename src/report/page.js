/*
 * The report page's main script (inlined into the report by src/report/html.ts last, after
 * page-map.js, page-charts.js and page-sections.js; plain browser JavaScript, no build step,
 * no network).
 *
 * Holds: the page's start-up (reads the JSON in #report-data, decodes the maps, fills every
 * section through page-sections.js), the map's controls, legend and tooltip, and
 * window.__vmallocReport, what tests and scripts read (ready, errors, the map's view and the
 * ranges drawn).
 * Invariant: the page only reads the data; nothing is fetched.
 */
/* global document, window */

(function () {
  'use strict';
  var M = globalThis.vmReportMap;
  var api = { ready: false, errors: [], map: null, maps: [] };
  window.__vmallocReport = api;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var C = globalThis.vmReportCharts;
  var S = globalThis.vmReportSections;
  var esc = C.esc;
  var num = C.num;

  function legend(map, colorBy) {
    var items = [['free', M.FREE_RGB]];
    var sw = function (rgb) {
      return 'rgb(' + rgb.join(',') + ')';
    };
    if (colorBy === 'kind' || map.meta.nrNodes === 0) {
      map.meta.kinds.forEach(function (k) {
        items.push(['busy: ' + k, M.KIND_COLORS[k]]);
      });
    } else {
      var n = Math.min(map.meta.nrNodes, 16);
      for (var i = 0; i < n; i++) items.push(['node ' + i, M.hueRgb(M.nodeHue(i), 0.7, 0.45)]);
      if (map.meta.nrNodes > n) items.push(['… ' + map.meta.nrNodes + ' nodes', [128, 128, 128]]);
    }
    var html = items
      .map(function (it) {
        return (
          '<span class="key"><i style="background:' + sw(it[1]) + '"></i>' + esc(it[0]) + '</span>'
        );
      })
      .join(' ');
    html +=
      '<br><span class="note">Shades of a node\'s colour: dark = pooled, full = busy, light = lazily freed; vmap blocks by CPU. ' +
      'A pixel only partly covered is paler. Wheel or +/- to zoom, drag to pan, hover for details.</span>';
    document.getElementById('legend').innerHTML = html;
  }

  /** The end of the used part of the window (past the last range that is not free), in pages. */
  function usedEnd(map) {
    var end = 0;
    M.CLASSES.forEach(function (c) {
      var r = map.classes[c];
      if (c !== 'free' && r.count > 0) end = Math.max(end, r.end[r.count - 1]);
    });
    return end === 0 ? map.pages : Math.min(map.pages, end * 1.05);
  }

  function setupMap(data) {
    var canvas = document.getElementById('map');
    var select = document.getElementById('design');
    var colorSel = document.getElementById('color-by');
    var label = document.getElementById('view-label');
    var tip = document.getElementById('tooltip');
    data.maps.forEach(function (m, i) {
      select.appendChild(el('option', { value: String(i) }, m.design));
    });
    var current = null;
    function show(i) {
      var map = api.maps[i];
      var colorBy =
        colorSel.value === 'auto' ? (map.meta.nrNodes > 0 ? 'node' : 'kind') : colorSel.value;
      var view = current ? current.view : null;
      current = new M.AddressMap(canvas, map, colorBy);
      api.map = current;
      current.onchange = function () {
        var v = current.view;
        var m = map.meta;
        label.textContent =
          M.kernelHex(m.window.start + v.start * m.pageSize) +
          ' – ' +
          M.kernelHex(m.window.start + v.end * m.pageSize) +
          ' (' +
          M.bytesText((v.end - v.start) * m.pageSize) +
          ', ' +
          num((v.end - v.start) / (canvas.width * canvas.height)) +
          ' pages a pixel; drawn in ' +
          current.lastDrawMs.toFixed(0) +
          ' ms)';
      };
      if (view && view.end <= map.pages) current.setView(view.start, view.end);
      else current.setView(0, usedEnd(map));
      legend(map, colorBy);
      S.showHistogram(map);
    }
    select.onchange = function () {
      show(Number(select.value));
    };
    colorSel.onchange = select.onchange;
    document.getElementById('zoom-used').onclick = function () {
      current.setView(0, usedEnd(current.map));
    };
    document.getElementById('zoom-all').onclick = function () {
      current.setView(0, current.map.pages);
    };
    document.getElementById('zoom-in').onclick = function () {
      current.zoom(0.25);
    };
    document.getElementById('zoom-out').onclick = function () {
      current.zoom(4);
    };
    var pos = function (ev) {
      var b = canvas.getBoundingClientRect();
      return {
        x: ((ev.clientX - b.left) * canvas.width) / b.width,
        y: ((ev.clientY - b.top) * canvas.height) / b.height,
      };
    };
    canvas.addEventListener(
      'wheel',
      function (ev) {
        ev.preventDefault();
        var p = pos(ev);
        current.zoom(ev.deltaY < 0 ? 0.8 : 1.25, current.pageAt(p.x, p.y));
      },
      { passive: false },
    );
    canvas.addEventListener('dblclick', function (ev) {
      var p = pos(ev);
      current.zoom(0.25, current.pageAt(p.x, p.y));
    });
    var drag = null;
    canvas.addEventListener('mousedown', function (ev) {
      drag = { p: pos(ev), view: current.view };
    });
    window.addEventListener('mouseup', function () {
      drag = null;
    });
    canvas.addEventListener('mousemove', function (ev) {
      var p = pos(ev);
      if (drag) {
        var ppp = (drag.view.end - drag.view.start) / (canvas.width * canvas.height);
        var d = (drag.p.x - p.x + Math.round(drag.p.y - p.y) * canvas.width) * ppp;
        current.setView(drag.view.start + d, drag.view.end + d);
        return;
      }
      var seg = current.describe(current.pageAt(p.x, p.y));
      if (!seg) {
        tip.style.display = 'none';
        return;
      }
      var lines = [
        seg.label + (seg.kind ? ': ' + seg.kind : ''),
        M.kernelHex(seg.start) + ' – ' + M.kernelHex(seg.start + seg.size),
        M.bytesText(seg.size),
      ];
      if (seg.node >= 0) lines.push('node ' + seg.node);
      if (seg.caller) lines.push(seg.caller);
      if (seg.cpu !== undefined)
        lines.push(
          'cpu ' + seg.cpu + ', ' + seg.usedPages + ' pages used, ' + seg.dirtyPages + ' dirty',
        );
      tip.textContent = lines.join('\n');
      tip.style.display = 'block';
      tip.style.left = ev.pageX + 12 + 'px';
      tip.style.top = ev.pageY + 12 + 'px';
    });
    canvas.addEventListener('mouseleave', function () {
      tip.style.display = 'none';
    });
    window.addEventListener('keydown', function (ev) {
      if (ev.key === '+' || ev.key === '=') current.zoom(0.5);
      else if (ev.key === '-') current.zoom(2);
    });
    show(0);
  }

  async function main() {
    var data = JSON.parse(document.getElementById('report-data').textContent);
    api.data = data;
    document.getElementById('title').textContent = data.title;
    document.getElementById('notes').innerHTML = data.notes.map(esc).join('<br>');
    S.showParams(data);
    S.showTests(data);
    S.showScaling(data);
    S.showLockStat(data);
    for (var i = 0; i < data.maps.length; i++) api.maps.push(await M.decodeMap(data.maps[i]));
    if (api.maps.length > 0) setupMap(data);
    else document.getElementById('map-section').textContent = 'No snapshot in this report.';
    /** Library address range of the view; set it in library addresses. */
    api.view = function () {
      var m = api.map.map.meta;
      return {
        start: m.window.start + api.map.view.start * m.pageSize,
        end: m.window.start + api.map.view.end * m.pageSize,
      };
    };
    api.setView = function (start, end) {
      var m = api.map.map.meta;
      api.map.setView((start - m.window.start) / m.pageSize, (end - m.window.start) / m.pageSize);
    };
    api.segments = function (limit) {
      return api.map.segments(limit || 10000);
    };
    api.pixelOf = function (addr) {
      return api.map.pixelOf(addr);
    };
    // Ready once the first frame of the map is drawn.
    var wait = function () {
      if (api.maps.length === 0 || api.map.drawCount > 0) {
        api.ready = true;
        document.body.dataset.ready = '1';
      } else window.requestAnimationFrame(wait);
    };
    wait();
  }

  main().catch(function (e) {
    api.errors.push(String(e && e.stack ? e.stack : e));
    throw e;
  });
})();
