/* The big screen: the one map (boundaries as the base map, open cases by traffic light, heat,
   cameras, sensors by alarm state, inspectors' last positions), the live counters and four
   ECharts charts, redrawn every refresh. */
(function () {
  'use strict';

  var TEXT = '#cfe3ff';
  var GRID = 'rgba(120, 160, 220, 0.18)';
  var PALETTE = ['#3fa7ff', '#36d1a0', '#ffc44d', '#ff7a59', '#b58cff', '#5ad8e6', '#f28fb0', '#9fe07a'];
  var SCREEN_STYLE = {
    district: { color: '#4fa3ff', weight: 2.2, fillColor: '#123a66', fillOpacity: 0.55 },
    street: { color: '#3d7cc4', weight: 1, fill: false, dashArray: '4 3' },
    community: { color: '#2f5f94', weight: 0.6, fill: false },
    resp_grid: { color: '#7a5fa6', weight: 0.6, fill: false },
  };

  function screen(opts) {
    var L_ = window.L;
    var map = L_.map('s-map', { attributionControl: false, zoomControl: true, preferCanvas: true, zoomSnap: 0.25 });
    map.fitBounds(opts.bounds, { padding: [10, 10] });
    var labels = opts.labels;
    var pending = 0;
    var body = document.body;

    function regionLayer(level) {
      pending += 1;
      var layer = L_.geoJSON(null, { style: SCREEN_STYLE[level], interactive: false });
      cityloop.regions(level).then(function (data) {
        layer.addData(data);
        body.setAttribute('data-' + level, String(data.features.length));
      }).catch(function () {}).then(function () { pending -= 1; markReady(); });
      return layer;
    }

    var districts = regionLayer('district').addTo(map);
    var streets = regionLayer('street').addTo(map);
    var communities = regionLayer('community');
    var respGrids = regionLayer('resp_grid');
    var unitGrids = L_.geoJSON(null, { style: { color: '#6fb8ff', weight: 0.4, fill: false }, interactive: false });
    var cases = L_.layerGroup().addTo(map);
    var heat = L_.heatLayer([], { radius: 22, blur: 18, minOpacity: 0.25, maxZoom: 15 }).addTo(map);
    /* Devices and people are DOM markers (divIcon), above the canvas of cases. */
    var cameras = L_.layerGroup().addTo(map);
    var sensors = L_.layerGroup().addTo(map);
    var inspectors = L_.layerGroup().addTo(map);

    var overlays = {};
    overlays[labels.districts] = districts;
    overlays[labels.streets] = streets;
    overlays[labels.communities] = communities;
    overlays[labels.respGrids] = respGrids;
    overlays[labels.unitGrids] = unitGrids;
    overlays[labels.heat] = heat;
    overlays[labels.cases] = cases;
    overlays[labels.cameras] = cameras;
    overlays[labels.sensors] = sensors;
    overlays[labels.inspectors] = inspectors;
    var control = L_.control.layers(null, overlays, { collapsed: false, position: 'topright' }).addTo(map);

    /* Communities appear when zoomed in a little; unit grids only for the visible box when
       zoomed in a lot (the server refuses more than a few thousand at once). */
    var autoCommunities = true;
    map.on('overlayadd overlayremove', function (e) {
      if (e.layer === communities) { autoCommunities = false; }
      if (e.layer === unitGrids && e.type === 'overlayadd') { loadGrids(); }
    });
    function zoomLayers() {
      if (autoCommunities) {
        if (map.getZoom() >= 13 && !map.hasLayer(communities)) { communities.addTo(map); }
        if (map.getZoom() < 13 && map.hasLayer(communities)) { map.removeLayer(communities); }
      }
      if (map.getZoom() >= 16 && !map.hasLayer(unitGrids)) { unitGrids.addTo(map); }
      loadGrids();
    }
    var gridRequest = 0;
    function loadGrids() {
      if (!map.hasLayer(unitGrids)) { return; }
      if (map.getZoom() < 16) { unitGrids.clearLayers(); return; }
      var b = map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(',');
      var mine = ++gridRequest;
      fetch('/web/layers/unit_grids.geojson?bbox=' + bbox, { credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== gridRequest) { return; }
          unitGrids.clearLayers();
          if (data.features) { unitGrids.addData(data); }
          body.setAttribute('data-unit-grids', String((data.features || []).length));
        }).catch(function () {});
    }
    map.on('zoomend moveend', zoomLayers);

    var charts = {
      trend: echarts.init(document.getElementById('chart-trend'), null, { renderer: 'canvas' }),
      sources: echarts.init(document.getElementById('chart-sources')),
      classes: echarts.init(document.getElementById('chart-classes')),
      departments: echarts.init(document.getElementById('chart-departments')),
    };
    window.addEventListener('resize', function () {
      Object.keys(charts).forEach(function (k) { charts[k].resize(); });
    });

    var axis = {
      axisLine: { lineStyle: { color: GRID } }, axisLabel: { color: TEXT },
      splitLine: { lineStyle: { color: GRID } },
    };

    function drawCharts(c) {
      charts.trend.setOption({
        color: PALETTE, animation: false,
        legend: { textStyle: { color: TEXT }, top: 0 },
        grid: { left: 40, right: 16, top: 30, bottom: 28 },
        tooltip: { trigger: 'axis' },
        xAxis: Object.assign({ type: 'category', data: c.trend.days }, axis),
        yAxis: Object.assign({ type: 'value', minInterval: 1 }, axis),
        series: [
          { name: labels.reported, type: 'line', smooth: true, areaStyle: { opacity: 0.25 }, data: c.trend.reported },
          { name: labels.closed, type: 'line', smooth: true, data: c.trend.closed },
        ],
      });
      charts.sources.setOption({
        color: PALETTE, animation: false,
        tooltip: { trigger: 'item' },
        legend: { type: 'scroll', orient: 'vertical', right: 0, top: 'middle', textStyle: { color: TEXT } },
        series: [{ type: 'pie', radius: ['38%', '70%'], center: ['34%', '52%'], minShowLabelAngle: 12,
          label: { position: 'inside', color: '#06203d', fontWeight: 'bold', formatter: '{d}%' },
          data: c.sources }],
      });
      var classes = c.classes.slice().reverse();
      charts.classes.setOption({
        color: ['#3fa7ff'], animation: false,
        grid: { left: 150, right: 30, top: 8, bottom: 20 },
        tooltip: { trigger: 'axis' },
        xAxis: Object.assign({ type: 'value', minInterval: 1 }, axis),
        yAxis: Object.assign({ type: 'category', data: classes.map(function (d) { return d.name; }) }, axis),
        series: [{ type: 'bar', data: classes.map(function (d) { return d.value; }),
          label: { show: true, position: 'right', color: TEXT }, barMaxWidth: 16 }],
      });
      var depts = c.departments.slice().reverse();
      charts.departments.setOption({
        color: ['#36d1a0', '#ff5a4f'], animation: false,
        legend: { textStyle: { color: TEXT }, top: 0 },
        grid: { left: 150, right: 30, top: 28, bottom: 20 },
        tooltip: { trigger: 'axis' },
        xAxis: Object.assign({ type: 'value', minInterval: 1 }, axis),
        yAxis: Object.assign({ type: 'category', data: depts.map(function (d) { return d.name; }) }, axis),
        series: [
          { name: labels.open, type: 'bar', stack: 'd', data: depts.map(function (d) { return d.open - d.overdue; }), barMaxWidth: 16 },
          { name: labels.overdue, type: 'bar', stack: 'd', data: depts.map(function (d) { return d.overdue; }), barMaxWidth: 16 },
        ],
      });
    }

    function drawCases(fc, points) {
      cases.clearLayers();
      fc.features.forEach(function (f) {
        var p = f.properties;
        var ll = L_.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
        cityloop.dot(ll, p.light, 5).bindTooltip(esc(p.ticket + ' ' + p['class'] + ' · ' + p.state))
          .on('click', function () { window.open('/case/' + p.id, '_blank'); })
          .addTo(cases);
      });
      var max = points.reduce(function (m, p) { return Math.max(m, p[2]); }, 1);
      heat.setOptions({ max: max });
      heat.setLatLngs(points);
      body.setAttribute('data-cases', String(fc.features.length));
    }

    function esc(text) {
      var div = document.createElement('div');
      div.textContent = text == null ? '' : String(text);
      return div.innerHTML;
    }

    function marker(f, className, size) {
      var ll = L_.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
      return L_.marker(ll, {
        keyboard: false,
        icon: L_.divIcon({ className: className, iconSize: [size, size] }),
      });
    }

    function drawPoints(data) {
      cameras.clearLayers();
      sensors.clearLayers();
      inspectors.clearLayers();
      var alarms = 0;
      (data.cameras ? data.cameras.features : []).forEach(function (f) {
        var p = f.properties;
        marker(f, 'mk mk-camera', 14)
          .bindTooltip(esc(p.code + ' ' + p.name) + '<br>' + esc(labels.openCases) + ' ' + p.open_cases +
            ' · ' + esc(labels.detections) + ' ' + p.detections_24h)
          .addTo(cameras);
      });
      (data.sensors ? data.sensors.features : []).forEach(function (f) {
        var p = f.properties;
        if (p.state === 'alarm') { alarms += 1; }
        var value = p.value == null ? '' : ' · ' + p.value + ' ' + p.unit;
        var m = marker(f, 'mk mk-sensor mk-' + p.kind + ' state-' + p.state, 14)
          .bindTooltip(esc(p.kind_label + ' ' + p.name) + '<br>' + esc(p.state_label + value +
            (p.signal ? ' · ' + p.signal : '') + (p.ticket ? ' · ' + p.ticket : '')));
        if (p.case_id) { m.on('click', function () { window.open('/case/' + p.case_id, '_blank'); }); }
        m.addTo(sensors);
      });
      (data.inspectors ? data.inspectors.features : []).forEach(function (f) {
        var p = f.properties;
        marker(f, 'mk mk-inspector' + (p.stale ? ' stale' : ''), 16)
          .bindTooltip(esc(p.name) + '<br>' + esc(labels.lastSeen + ' ' + p.at))
          .addTo(inspectors);
      });
      body.setAttribute('data-cameras', String(cameras.getLayers().length));
      body.setAttribute('data-sensors', String(sensors.getLayers().length));
      body.setAttribute('data-sensor-alarms', String(alarms));
      body.setAttribute('data-inspectors', String(inspectors.getLayers().length));
    }

    var loaded = false;
    function markReady() {
      if (loaded && pending === 0) { body.setAttribute('data-ready', '1'); }
    }

    function refresh() {
      return fetch('/screen/data', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) {
          Object.keys(data.counters).forEach(function (k) {
            var el = document.getElementById('counter-' + k);
            if (el) { el.textContent = data.counters[k]; }
          });
          document.getElementById('s-clock').textContent = data.at;
          drawCharts(data.charts);
          drawCases(data.cases, data.heat);
          drawPoints(data);
          loaded = true;
          markReady();
        }).catch(function () {});
    }
    refresh();
    setInterval(refresh, opts.refreshSeconds * 1000);
    window.cityloopScreen = { map: map, charts: charts, refresh: refresh, control: control };
  }

  window.cityloop = Object.assign(window.cityloop || {}, { screen: screen });
})();
