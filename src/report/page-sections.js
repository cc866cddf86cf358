/*
 * The report page's sections besides the map (inlined into the report by src/report/html.ts
 * after page-map.js and page-charts.js; plain browser JavaScript).
 *
 * Holds: showTests() (per-test times per design), showScaling() (the simulated scaling
 * curves), showLockStat() (contentions, wait time and acquisitions of the busiest lock
 * classes), showParams() (the run's parameters) and showHistogram() (free-block sizes of the
 * map shown).
 * Invariant: each reads the report's data only and fills its own element.
 */
/* global document */

(function () {
  'use strict';
  var M = globalThis.vmReportMap;
  var C = globalThis.vmReportCharts;
  var esc = C.esc;
  var mean = C.mean;
  var uniq = C.uniq;
  var barChart = C.barChart;
  var lineChart = C.lineChart;

  function showTests(data) {
    var box = document.getElementById('tests');
    if (data.tests.length === 0) {
      box.textContent = 'No test run in this report.';
      return;
    }
    var names = uniq(
      [].concat.apply(
        [],
        data.tests.map(function (r) {
          return r.tests.map(function (t) {
            return t.name;
          });
        }),
      ),
    );
    var series = data.tests.map(function (r) {
      return {
        name: r.design,
        values: names.map(function (n) {
          var t = r.tests.find(function (x) {
            return x.name === n;
          });
          return t ? mean(t.avgUsec) : 0;
        }),
      };
    });
    var rows = data.tests.map(function (r) {
      var failed = r.tests.reduce(function (a, t) {
        return a + t.failed;
      }, 0);
      return (
        '<tr><td>' +
        esc(r.design) +
        '</td><td>' +
        Math.round(r.elapsedMs) +
        '</td><td>' +
        failed +
        '</td></tr>'
      );
    });
    box.innerHTML =
      barChart({
        title: 'Average time of one repetition, per test (mean over workers)',
        categories: names,
        series: series,
        unit: 'usec',
      }) +
      '<table><tr><th>design</th><th>run wall ms</th><th>failed</th></tr>' +
      rows.join('') +
      '</table>';
  }

  function showScaling(data) {
    var box = document.getElementById('scaling');
    var s = data.scaling;
    if (!s || s.rows.length === 0) {
      box.textContent = 'No scaling run in this report.';
      return;
    }
    var designs = uniq(
      s.rows.map(function (r) {
        return r.design;
      }),
    );
    var xs = s.cpus.slice().sort(function (a, b) {
      return a - b;
    });
    var pick = function (field, scale) {
      return designs.map(function (d) {
        return {
          name: d,
          values: xs.map(function (c) {
            var r = s.rows.find(function (x) {
              return x.design === d && x.cpus === c;
            });
            return r ? r[field] * scale : null;
          }),
        };
      });
    };
    box.innerHTML =
      '<p>Simulated machines (virtual time), run_test_mask=' +
      s.mask +
      ', test_loop_count=' +
      s.loops +
      ', nr_threads = CPUs.</p>' +
      lineChart({
        title: 'Virtual time of the run',
        xs: xs,
        series: pick('virtualMs', 1),
        unit: 'ms',
        xLabel: 'CPUs',
      }) +
      lineChart({
        title: 'Loops per second, all CPUs',
        xs: xs,
        series: pick('loopsPerSec', 1),
        unit: 'loops/s',
        xLabel: 'CPUs',
      }) +
      lineChart({
        title: 'Share of CPU time spent spinning on locks',
        xs: xs,
        series: pick('spinShare', 100),
        unit: '%',
        xLabel: 'CPUs',
      });
  }

  function showLockStat(data) {
    var box = document.getElementById('lockstat');
    if (data.lockStat.length === 0) {
      box.textContent = 'No lock statistics in this report.';
      return;
    }
    // The classes with the most contentions (then acquisitions) over every design.
    var score = {};
    data.lockStat.forEach(function (d) {
      d.classes.forEach(function (c) {
        score[c.name] = (score[c.name] || 0) + c.contentions * 1e9 + c.acquisitions;
      });
    });
    var names = Object.keys(score)
      .filter(function (n) {
        return score[n] > 0;
      })
      .sort(function (a, b) {
        return score[b] - score[a];
      })
      .slice(0, 12);
    var series = function (field) {
      return data.lockStat.map(function (d) {
        return {
          name: d.design,
          values: names.map(function (n) {
            return d.classes
              .filter(function (c) {
                return c.name === n;
              })
              .reduce(function (a, c) {
                return a + c[field];
              }, 0);
          }),
        };
      });
    };
    box.innerHTML =
      barChart({
        title: 'Contentions per lock class',
        categories: names,
        series: series('contentions'),
        unit: 'contentions',
      }) +
      barChart({
        title: 'Total wait time per lock class',
        categories: names,
        series: series('waitTotal'),
        unit: 'usec',
      }) +
      barChart({
        title: 'Acquisitions per lock class',
        categories: names,
        series: series('acquisitions'),
        unit: 'acquisitions',
      });
  }

  function showParams(data) {
    var t = document.getElementById('params');
    var rows = [
      ['command', data.command],
      ['generated', data.generated],
      ['machine', data.machine],
      ['vmalloc version', data.version],
    ];
    for (var k in data.params) rows.push([k, String(data.params[k])]);
    t.innerHTML = rows
      .map(function (r) {
        return '<tr><th>' + esc(r[0]) + '</th><td>' + esc(r[1]) + '</td></tr>';
      })
      .join('');
  }

  /** Free-block sizes in the window, by power of two of pages. */
  function showHistogram(map) {
    var box = document.getElementById('histogram');
    var r = map.classes.free;
    var counts = [];
    for (var k = 0; k < r.count; k++) {
      var b = Math.floor(Math.log2(Math.max(1, r.end[k] - r.start[k])));
      counts[b] = (counts[b] || 0) + 1;
    }
    var cats = [];
    var vals = [];
    var first = 0;
    while (first < counts.length && !counts[first]) first++;
    for (var i = first; i < counts.length; i++) {
      cats.push(M.bytesText(Math.pow(2, i) * map.meta.pageSize) + (i > 0 ? '+' : ''));
      vals.push(counts[i] || 0);
    }
    box.innerHTML =
      barChart({
        title: 'Free blocks in the window by size (' + map.meta.design + ')',
        categories: cats,
        series: [{ name: map.meta.design, values: vals }],
        unit: 'blocks',
      }) +
      '<p>' +
      r.count +
      ' free blocks in the window; ' +
      map.classes.busy.count +
      ' busy areas, ' +
      map.classes.lazy.count +
      ' lazy, ' +
      map.classes.pooled.count +
      ' pooled, ' +
      map.classes.vmapBlocks.count +
      ' vmap blocks; vmap_lazy_nr ' +
      map.meta.lazyPages +
      ' pages.</p>';
  }

  globalThis.vmReportSections = {
    showTests: showTests,
    showScaling: showScaling,
    showLockStat: showLockStat,
    showParams: showParams,
    showHistogram: showHistogram,
  };
})();
