/*
 * freezer-ui Overview charts, drawn with Rickshaw (on D3 3.5), the charting library Horizon ships
 * as XStatic-Rickshaw and already loads on every page.
 *
 * Project Overview: <div class="freezer-charts" data-freezer-usage-url="..."> holds three
 * <div class="freezer-chart" data-chart="stored|new|dedup">; the series come from the JSON
 * endpoint /api/freezer_ui/stats/usage/ (freezer_ui/api/rest/stats.py).
 * Admin Overview: <div class="freezer-chart" data-chart="projects"> reads the per-project totals
 * the page embeds with json_script (id in data-source).
 *
 * Labels arrive translated in data-label-* attributes; every text is set with .text(), never as
 * HTML, because project and backup names are user data.
 */
(function ($) {
  'use strict';

  var HEIGHT = 180;
  var DAY = 86400;
  var COLORS = {stored: '#337ab7', new: '#5cb85c', dedup: '#f0ad4e', projects: '#337ab7'};

  function bytes(value) {
    if (value === null || value === undefined) { return '-'; }
    // Powers of 1024 with the names Django's filesizeformat gives them, so the axes read like
    // the sizes in the tables next to them.
    var units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    var i = 0;
    while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return (i ? value.toFixed(1) : String(Math.round(value))) + ' ' + units[i];
  }

  function percent(value) {
    return value === null || value === undefined ? '-' : value.toFixed(1) + ' %';
  }

  function day(seconds) {
    // The series are per UTC day: show the day, not a local time of its first second.
    return new Date(seconds * 1000).toISOString().slice(0, 10);
  }

  function escape(text) {
    return $('<div></div>').text(text === undefined || text === null ? '' : String(text)).html();
  }

  function hover(chart, xFormatter, yFormatter, barInterval) {
    // Rickshaw puts the hover texts in with innerHTML, and a project name is user data: every
    // piece is escaped here, the series name (a translation) included.
    var detail = new Rickshaw.Graph.HoverDetail({
      graph: chart,
      xFormatter: function (x) { return escape(xFormatter(x)); },
      yFormatter: function (y) { return escape(yFormatter(y)); },
      formatter: function (series, x, y, formattedX, formattedY) {
        return escape(series.name) + ':&nbsp;' + formattedY;
      }
    });
    if (barInterval) {
      // A bar is drawn from its x to the right, but the hover box picks the point nearest to
      // the mouse: without this the right half of a bar would name the next one.
      var update = detail.update;
      detail.update = function (e) {
        if (e && e.target) {
          var half = (chart.x(barInterval) - chart.x(0)) * 0.45;
          e = {
            target: e.target,
            offsetX: Math.max(1, (e.offsetX || e.layerX) - half),
            offsetY: e.offsetY || e.layerY
          };
        }
        return update.call(detail, e);
      };
    }
    return detail;
  }

  function dayAxis(chart) {
    // ISO dates rather than Rickshaw's time axis, whose month names are English only.
    return new Rickshaw.Graph.Axis.X({graph: chart, ticks: 3, tickFormat: day});
  }

  function message($el, text) {
    $el.empty().append($('<p class="text-muted freezer-chart-message"></p>').text(text));
  }

  function graph(el, renderer, name, color, data, options) {
    // A little narrower than the column: Rickshaw draws its Y axis inside this width.
    var width = Math.max(($(el).width() || 0) - 10, 200);
    var chart = new Rickshaw.Graph($.extend({
      element: el,
      width: width,
      height: HEIGHT,
      renderer: renderer,
      // Straight segments between days: a smoothed curve would invent values in between.
      interpolation: 'linear',
      min: 0,
      series: [{name: name, color: color, data: data}]
    }, options || {}));
    return chart;
  }

  function drawUsage($box, usage) {
    var labels = $box.data();
    var points = usage.series || [];
    $box.find('.freezer-chart').each(function () {
      var $el = $(this);
      var kind = $el.data('chart');
      var data;
      var chart;
      $el.empty();
      if (kind === 'stored' || kind === 'new') {
        data = points.map(function (p) {
          return {x: p.time, y: kind === 'stored' ? p.stored_bytes : p.new_bytes};
        });
        chart = graph(this, kind === 'stored' ? 'area' : 'bar',
                      kind === 'stored' ? labels.labelStored : labels.labelNew,
                      COLORS[kind], data, kind === 'stored' ? {stroke: true} : {});
        dayAxis(chart);
        new Rickshaw.Graph.Axis.Y({graph: chart, tickFormat: bytes, ticks: 4});
        hover(chart, day, bytes, kind === 'new' ? DAY : 0);
      } else if (kind === 'dedup') {
        data = points.map(function (p) {
          return {x: p.time, y: p.dedup_ratio === null ? null : p.dedup_ratio * 100};
        });
        if (!data.some(function (d) { return d.y !== null; })) {
          message($el, labels.labelNoRatio);
          return;
        }
        chart = graph(this, 'lineplot', labels.labelDedup, COLORS.dedup, data, {max: 100});
        dayAxis(chart);
        new Rickshaw.Graph.Axis.Y({graph: chart, ticks: 4});
        hover(chart, day, percent);
      } else {
        return;
      }
      chart.render();
      $el.attr('data-drawn', 'true');
    });
  }

  function loadUsage($box) {
    $.ajax({url: $box.data('freezerUsageUrl'), dataType: 'json'})
      .done(function (usage) { drawUsage($box, usage); })
      .fail(function () {
        $box.find('.freezer-chart').each(function () {
          message($(this), $box.data('labelFailed'));
        });
      });
  }

  function drawProjects(el) {
    var $el = $(el);
    var source = document.getElementById($el.data('source'));
    var items = source ? JSON.parse(source.textContent) : [];
    $el.empty();
    if (!items.length) {
      message($el, $el.data('labelEmpty'));
      return;
    }
    var names = items.map(function (item) { return item.name; });
    var data = items.map(function (item, i) { return {x: i, y: item.stored_bytes}; });
    var chart = graph(el, 'bar', $el.data('labelStored'), COLORS.projects, data);
    // A bar starts at its x and is about one unit wide: name it under its middle.
    new Rickshaw.Graph.Axis.X({
      graph: chart,
      tickValues: data.map(function (d) { return d.x + 0.45; }),
      tickFormat: function (x) {
        var name = names[Math.floor(x)];
        return name === undefined ? '' : name;
      }
    });
    new Rickshaw.Graph.Axis.Y({graph: chart, tickFormat: bytes, ticks: 4});
    hover(chart, function (x) { return names[x]; }, bytes, 1);
    chart.render();
    $el.attr('data-drawn', 'true');
  }

  $(function () {
    if (typeof Rickshaw === 'undefined') {
      return;  // Horizon loads Rickshaw on every page; without it the page keeps its tables.
    }
    $('.freezer-charts[data-freezer-usage-url]').each(function () { loadUsage($(this)); });
    $('.freezer-chart[data-chart="projects"]').each(function () { drawProjects(this); });
  });
}(jQuery));
