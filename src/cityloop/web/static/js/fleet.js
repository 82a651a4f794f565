/* The field force in the browser.
   cityloop.duty.attach(): the inspector app's duty buttons (上岗/下岗/请假/出格报备) and, while on
   duty, its position reports: one fix every INTERVAL_MS (battery: coarse, cached fixes
   allowed, the GPS off in between), kept in localStorage until the server has answered, so a phone without signal
   sends them later; a batch sent again after a lost answer is stored once by the server (one
   fix per person and time), which makes the reports exactly once.
   cityloop.fleetLayers(): the big screen's live people and vehicles, moved in place by the
   server-sent events of /screen/fleet/stream (no polling per marker); a click replays the
   unit's track of the last two hours. */
(function () {
  'use strict';

  var KEY = 'cityloop-fixes';
  var INTERVAL_MS = 30000;
  var MAX_BATCH = 500;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': csrf() },
      body: JSON.stringify(body),
    });
  }

  function buffered() {
    try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch (e) { return []; }
  }

  function keep(fixes) { localStorage.setItem(KEY, JSON.stringify(fixes)); }

  function attach(id) {
    var bar = document.getElementById(id);
    if (!bar) { return null; }
    var state = bar.getAttribute('data-duty') || 'off';
    var status = bar.querySelector('.duty-status');
    var waiting = bar.querySelector('.duty-waiting');
    var watch = null;
    var last = 0;
    var sending = false;

    function show() {
      bar.setAttribute('data-duty', state);
      status.textContent = bar.getAttribute('data-label-' + state) || state;
      var n = buffered().length;
      waiting.textContent = n ? n + ' ' + bar.getAttribute('data-label-buffered') : '';
      bar.setAttribute('data-buffered', String(n));
    }

    function record(lon, lat) {
      var now = Date.now();
      if (now - last < INTERVAL_MS / 2) { return; }  /* two answers to one ask */
      last = now;
      var fixes = buffered();
      fixes.push({ lon: lon, lat: lat, at: new Date(now).toISOString() });
      keep(fixes.slice(-5000));
      show();
      flush();
    }

    function flush() {
      var fixes = buffered();
      if (sending || !fixes.length || !navigator.onLine) { return Promise.resolve(); }
      sending = true;
      var batch = fixes.slice(0, MAX_BATCH);
      return post('/m/inspector/positions', { positions: batch }).then(function (r) {
        if (r.ok || r.status === 422) {
          /* Answered: drop what was sent (422: a batch the server will never take). */
          keep(buffered().slice(batch.length));
        }
      }).catch(function () {}).then(function () { sending = false; show(); });
    }

    /* One fix per interval, asked for when due (a coarse fix, a cached one accepted): the
       GPS is not kept on between reports. */
    function locate() {
      if (!navigator.geolocation) { return; }
      navigator.geolocation.getCurrentPosition(function (p) {
        record(p.coords.longitude, p.coords.latitude);
      }, function () {}, { enableHighAccuracy: false, maximumAge: INTERVAL_MS / 2, timeout: 60000 });
    }

    function track(on) {
      if (on && watch === null) {
        locate();
        watch = setInterval(locate, INTERVAL_MS);
      } else if (!on && watch !== null) {
        clearInterval(watch);
        watch = null;
      }
    }

    bar.querySelectorAll('button[data-status]').forEach(function (button) {
      button.addEventListener('click', function () {
        var wanted = button.getAttribute('data-status');
        var body = { status: wanted };
        if (wanted === 'leave' || wanted === 'out_of_grid') {
          var reason = window.prompt(bar.getAttribute('data-label-reason'));
          if (!reason) { return; }
          body.reason = reason;
        }
        post('/m/inspector/duty', body).then(function (r) {
          return r.json().then(function (data) {
            if (!r.ok) { throw new Error(data.detail || r.status); }
            state = data.status;
            track(state === 'on' || state === 'out_of_grid');
            show();
            return flush();
          });
        }).catch(function (e) { waiting.textContent = String(e.message || e); });
      });
    });
    window.addEventListener('online', flush);
    setInterval(flush, INTERVAL_MS);
    track(state === 'on' || state === 'out_of_grid');
    show();
    flush();
    return { record: record, flush: flush };
  }

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }

  function fleetLayers(map, labels, control) {
    var L_ = window.L;
    var people = L_.layerGroup().addTo(map);
    var vehicles = L_.layerGroup().addTo(map);
    var replay = L_.layerGroup().addTo(map);
    if (control) {
      control.addOverlay(people, labels.people);
      control.addOverlay(vehicles, labels.vehicles);
    }
    var markers = {};
    var body = document.body;

    function icon(u) {
      var cls = 'mk ' + (u.layer === 'vehicle' ? 'mk-vehicle mk-' + u.kind : 'mk-person duty-' + u.state) +
        (u.state === 'stale' ? ' stale' : '');
      return L_.divIcon({ className: cls, iconSize: [16, 16], html: '' });
    }

    function showTrack(u) {
      fetch('/screen/fleet/track?subject=' + u.layer + '&id=' + u.id, { credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          replay.clearLayers();
          if (data.points && data.points.length) {
            L_.polyline(data.points, { color: '#ffd24d', weight: 3 }).addTo(replay);
          }
          body.setAttribute('data-replay', String((data.points || []).length));
        });
    }

    function place(u) {
      var key = u.layer + ':' + u.id;
      var m = markers[key];
      var tip = esc(u.name) + '<br>' + esc(u.at.slice(11, 19)) + ' · ' + esc(u.state);
      if (!m) {
        m = L_.marker([u.lat, u.lon], { icon: icon(u) }).bindTooltip(tip);
        m.on('click', function () { showTrack(m.unit); });
        m.addTo(u.layer === 'vehicle' ? vehicles : people);
        markers[key] = m;
      } else {
        m.setLatLng([u.lat, u.lon]);
        m.setIcon(icon(u));
        m.setTooltipContent(tip);
      }
      m.unit = u;
      var el = m.getElement();
      if (el) {
        el.setAttribute('data-unit', key);
        el.setAttribute('data-lonlat', u.lon.toFixed(6) + ',' + u.lat.toFixed(6));
      }
    }

    var source = new EventSource('/screen/fleet/stream');
    source.addEventListener('positions', function (ev) {
      JSON.parse(ev.data).forEach(place);
      body.setAttribute('data-fleet-vehicles', String(vehicles.getLayers().length));
      body.setAttribute('data-fleet-people', String(people.getLayers().length));
      body.setAttribute('data-fleet-events', String(Number(body.getAttribute('data-fleet-events') || 0) + 1));
    });
    return { source: source, markers: markers };
  }

  window.cityloop = Object.assign(window.cityloop || {}, {
    duty: { attach: attach },
    fleetLayers: fleetLayers,
  });
})();
