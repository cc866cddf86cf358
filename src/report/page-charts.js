/*
 * The report page's small charts (inlined into the report by src/report/html.ts; plain
 * browser JavaScript, no build step, no network).
 *
 * Holds: barChart() (grouped bars) and lineChart() (lines over a log2 axis of CPUs), both
 * returning SVG markup, what they share (the y scale: linear, or log10 when the values span
 * more than two decades; the y grid; the box with title and legend), and small helpers (esc, num, mean, uniq) the other page scripts use.
 * Invariant: every string from the data goes through esc() before it enters markup.
 */

(function () {
  'use strict';

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }

  /** Pixels above a chart's plot, for its unit label. */
  var TOP = 22;

  var SERIES = ['#3b6ec8', '#e08a1e', '#2ea05a', '#c8413b', '#8246be', '#17979f', '#8c5a32'];

  function num(v) {
    if (v === 0) return '0';
    var a = Math.abs(v);
    if (a >= 1e6 || a < 1e-2) return v.toExponential(1);
    if (a >= 100) return String(Math.round(v));
    return v.toFixed(a >= 10 ? 1 : 2);
  }

  /** y scale: linear from 0, or log10 when the values span more than two decades. */
  function yScale(values, height) {
    var pos = values.filter(function (v) {
      return v > 0;
    });
    var max = pos.length === 0 ? 1 : Math.max.apply(null, pos);
    var min = Math.min.apply(null, pos.concat([max]));
    var log = max / min > 100;
    if (log) {
      var lo = Math.floor(Math.log10(min));
      var hi = Math.ceil(Math.log10(max));
      if (hi === lo) hi++;
      var ticks = [];
      for (var t = lo; t <= hi; t++) ticks.push(Math.pow(10, t));
      return {
        log: true,
        ticks: ticks,
        y: function (v) {
          return v <= 0 ? height : height - ((Math.log10(v) - lo) / (hi - lo)) * height;
        },
      };
    }
    var step = Math.pow(10, Math.floor(Math.log10(max)));
    var top = Math.ceil(max / step) * step;
    var lin = [];
    for (var s = 0; s <= top + 1e-9; s += top / 4) lin.push(s);
    return {
      log: false,
      ticks: lin,
      y: function (v) {
        return height - (v / top) * height;
      },
    };
  }

  function legendHtml(names) {
    return names
      .map(function (n, i) {
        return (
          '<span class="key"><i style="background:' +
          SERIES[i % SERIES.length] +
          '"></i>' +
          esc(n) +
          '</span>'
        );
      })
      .join(' ');
  }

  /** Every value of every series, for the y scale. */
  function seriesValues(series) {
    var all = [];
    series.forEach(function (s) {
      all = all.concat(s.values);
    });
    return all;
  }

  /** The y axis: a grid line and a label per tick, across a plot from `left` to w - 10. */
  function yGrid(sc, left, w) {
    var out = '';
    sc.ticks.forEach(function (t) {
      var y = TOP + sc.y(t);
      out += '<line x1="' + left + '" x2="' + (w - 10) + '" y1="' + y + '" y2="' + y;
      out += '" class="grid"/>';
      out += '<text x="' + (left - 4) + '" y="' + (y + 4) + '" text-anchor="end">';
      out += num(t) + '</text>';
    });
    return out;
  }

  /** A chart's box: its title, its svg and the legend of its series. */
  function chartBox(o, svg) {
    var names = o.series.map(function (s) {
      return s.name;
    });
    return (
      '<div class="chart-box"><h3>' +
      esc(o.title) +
      '</h3>' +
      svg +
      '<div>' +
      legendHtml(names) +
      '</div></div>'
    );
  }

  /** Grouped bars: one group per category, one bar per series. */
  function barChart(o) {
    var W = Math.max(520, o.categories.length * (o.series.length * 14 + 26) + 80);
    var H = 220;
    var left = 60;
    var bottom = 70;
    var ph = H - bottom - TOP;
    var sc = yScale(seriesValues(o.series), ph);
    var gw = (W - left - 10) / Math.max(1, o.categories.length);
    var bw = Math.max(3, Math.min(18, (gw - 8) / Math.max(1, o.series.length)));
    var svg = '<svg width="' + W + '" height="' + H + '" class="chart">';
    svg += yGrid(sc, left, W);
    o.categories.forEach(function (c, i) {
      var gx = left + i * gw + 4;
      o.series.forEach(function (s, j) {
        var v = s.values[i] || 0;
        var y = TOP + sc.y(v);
        svg +=
          '<rect x="' +
          (gx + j * bw) +
          '" y="' +
          y +
          '" width="' +
          (bw - 1) +
          '" height="' +
          Math.max(0, TOP + ph - y) +
          '" fill="' +
          SERIES[j % SERIES.length] +
          '"><title>' +
          esc(s.name + ', ' + c + ': ' + num(v) + ' ' + o.unit) +
          '</title></rect>';
      });
      var lx = gx + (o.series.length * bw) / 2;
      svg +=
        '<text x="' +
        lx +
        '" y="' +
        (H - bottom + 14) +
        '" transform="rotate(30 ' +
        lx +
        ' ' +
        (H - bottom + 14) +
        ')" class="cat">' +
        esc(c.length > 28 ? c.slice(0, 27) + '…' : c) +
        '</text>';
    });
    svg +=
      '<text x="4" y="12" class="unit">' + esc(o.unit + (sc.log ? ' (log)' : '')) + '</text></svg>';
    return chartBox(o, svg);
  }

  /** Lines over x values on a log2 axis (CPUs). */
  function lineChart(o) {
    var W = 500;
    var H = 240;
    var left = 60;
    var bottom = 30;
    var ph = H - bottom - TOP;
    var xs = o.xs;
    var sc = yScale(seriesValues(o.series), ph);
    var lx = function (x) {
      var a = Math.log2(xs[0]);
      var b = Math.log2(xs[xs.length - 1]);
      return left + (b === a ? 0.5 : (Math.log2(x) - a) / (b - a)) * (W - left - 20);
    };
    var svg = '<svg width="' + W + '" height="' + H + '" class="chart">';
    svg += yGrid(sc, left, W);
    xs.forEach(function (x) {
      svg += '<text x="' + lx(x) + '" y="' + (H - 12) + '" text-anchor="middle">' + x + '</text>';
    });
    o.series.forEach(function (s, j) {
      var pts = [];
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) return;
        pts.push(lx(xs[i]) + ',' + (TOP + sc.y(v)));
        svg +=
          '<circle cx="' +
          lx(xs[i]) +
          '" cy="' +
          (TOP + sc.y(v)) +
          '" r="3" fill="' +
          SERIES[j % SERIES.length] +
          '"><title>' +
          esc(s.name + ' at ' + xs[i] + ' CPUs: ' + num(v) + ' ' + o.unit) +
          '</title></circle>';
      });
      svg +=
        '<polyline fill="none" stroke-width="2" stroke="' +
        SERIES[j % SERIES.length] +
        '" points="' +
        pts.join(' ') +
        '"/>';
    });
    svg += '<text x="4" y="12" class="unit">' + esc(o.unit + (sc.log ? ' (log)' : '')) + '</text>';
    svg +=
      '<text x="' +
      (W - 10) +
      '" y="' +
      (H - 1) +
      '" text-anchor="end" class="unit">' +
      esc(o.xLabel) +
      '</text></svg>';
    return chartBox(o, svg);
  }

  function mean(a) {
    return a.length === 0
      ? 0
      : a.reduce(function (x, y) {
          return x + y;
        }, 0) / a.length;
  }

  function uniq(a) {
    return a.filter(function (x, i) {
      return a.indexOf(x) === i;
    });
  }

  globalThis.vmReportCharts = {
    esc: esc,
    num: num,
    mean: mean,
    uniq: uniq,
    barChart: barChart,
    lineChart: lineChart,
  };
})();
