/* cityloop maps: Leaflet with the city's own boundaries as the base map (no tile server,
   nothing fetched from outside: the console must work on a network with no internet). */
(function () {
  'use strict';

  var LIGHT = { green: '#1a9e55', yellow: '#e8a317', red: '#d62d20' };
  var STYLE = {
    district: { color: '#2b6cb0', weight: 2, fillColor: '#dbe8f5', fillOpacity: 0.45 },
    street: { color: '#5f87b3', weight: 1, fill: false, dashArray: '4 3' },
    community: { color: '#9bb3cc', weight: 0.6, fill: false },
    resp_grid: { color: '#b48ead', weight: 0.6, fill: false },
  };
  var cache = {};

  function regions(level) {
    if (!cache[level]) {
      cache[level] = fetch('/web/layers/regions/' + level + '.geojson', { credentials: 'same-origin' })
        .then(function (r) {
          if (!r.ok) { throw new Error('layer ' + level + ': ' + r.status); }
          return r.json();
        });
    }
    return cache[level];
  }

  function regionLayer(level, style) {
    var layer = L.geoJSON(null, { style: style || STYLE[level], interactive: false });
    regions(level).then(function (data) { layer.addData(data); }).catch(function () {});
    return layer;
  }

  function baseMap(id, bounds, opts) {
    opts = opts || {};
    var el = document.getElementById(id);
    if (!el) { return null; }
    var map = L.map(el, { attributionControl: false, zoomSnap: 0.5 });
    map.fitBounds(bounds);
    (opts.levels || ['district']).forEach(function (level) { regionLayer(level).addTo(map); });
    return map;
  }

  function dot(latlng, light, radius) {
    return L.circleMarker(latlng, {
      radius: radius || 7, color: '#ffffff', weight: 1.5,
      fillColor: LIGHT[light] || LIGHT.green, fillOpacity: 0.95,
    });
  }

  /* A map to place a pin on: fills the form's hidden lon/lat inputs (WGS-84, as GPS gives). */
  function picker(id, bounds, opts) {
    opts = opts || {};
    var map = baseMap(id, bounds, opts);
    if (!map) { return null; }
    var lon = document.getElementById('lon');
    var lat = document.getElementById('lat');
    var coords = document.getElementById('coords');
    var marker = null;
    function place(latlng, zoom) {
      if (marker) { marker.setLatLng(latlng); } else { marker = L.marker(latlng).addTo(map); }
      lon.value = latlng.lng.toFixed(6);
      lat.value = latlng.lat.toFixed(6);
      if (coords) { coords.textContent = lon.value + ', ' + lat.value; }
      if (zoom) { map.setView(latlng, Math.max(map.getZoom(), 15)); }
    }
    map.on('click', function (e) { place(e.latlng, false); });
    if (lon.value && lat.value) {
      place(L.latLng(parseFloat(lat.value), parseFloat(lon.value)), true);
    }
    function locate() {
      if (!navigator.geolocation) { return; }
      if (coords && opts.waiting) { coords.textContent = opts.waiting; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        place(L.latLng(pos.coords.latitude, pos.coords.longitude), true);
      }, function () {
        if (coords && opts.failed) { coords.textContent = opts.failed; }
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    }
    var button = document.getElementById('locate-me');
    if (button) { button.addEventListener('click', locate); }
    if (opts.locate && !lon.value) { locate(); }
    map.cityloopReset = function () {
      if (marker) { map.removeLayer(marker); marker = null; }
      lon.value = ''; lat.value = '';
      if (coords) { coords.textContent = ''; }
      if (opts.locate) { locate(); }
    };
    window.cityloopPicker = map;
    return map;
  }

  function caseMap(id, c) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    var map = L.map(el, { attributionControl: false });
    var here = L.latLng(c.lat, c.lon);
    map.setView(here, 16);
    ['district', 'street', 'community'].forEach(function (level) { regionLayer(level).addTo(map); });
    dot(here, c.light, 9).bindTooltip(c.ticket).addTo(map);
    return map;
  }

  function nearbyMap(id, center, points) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    var map = L.map(el, { attributionControl: false });
    var here = L.latLng(center.lat, center.lon);
    map.setView(here, 17);
    ['district', 'street', 'community'].forEach(function (level) { regionLayer(level).addTo(map); });
    L.circle(here, { radius: 250, color: '#2b6cb0', weight: 1, fillOpacity: 0.05 }).addTo(map);
    dot(here, 'red', 8).addTo(map);
    var all = [here];
    points.forEach(function (p) {
      var ll = L.latLng(p.lat, p.lon);
      all.push(ll);
      dot(ll, 'yellow', 7).bindTooltip(p.ticket).addTo(map)
        .on('click', function () { window.location = '/case/' + p.id; });
    });
    if (all.length > 1) { map.fitBounds(L.latLngBounds(all).pad(0.3), { maxZoom: 18 }); }
    return map;
  }

  function taskMap(id, bounds, points) {
    var map = baseMap(id, bounds, { levels: ['district', 'street', 'community'] });
    if (!map) { return null; }
    var all = [];
    points.forEach(function (p) {
      var ll = L.latLng(p.lat, p.lon);
      all.push(ll);
      dot(ll, 'yellow', 8).bindTooltip(p.ticket).addTo(map)
        .on('click', function () { window.location = '/case/' + p.id; });
    });
    if (all.length) { map.fitBounds(L.latLngBounds(all).pad(0.5), { maxZoom: 16 }); }
    return map;
  }

  window.cityloop = Object.assign(window.cityloop || {}, {
    LIGHT: LIGHT, STYLE: STYLE, regions: regions, regionLayer: regionLayer, dot: dot,
    baseMap: baseMap, picker: picker, caseMap: caseMap, nearbyMap: nearbyMap, taskMap: taskMap,
  });
})();
