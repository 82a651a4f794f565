/* The phones' outbox (the inspector's report, the officer's on-site case; each item keeps
   the URL of the form that made it): a report made without signal waits in the browser (IndexedDB keeps
   its photos and its voice note too, as blobs) and is sent when the network is back. Each report carries the idempotency key
   it was given when it was made, so sending it again (a lost answer, two tabs) makes no second
   case: the server answers with the case the first send created. */
(function () {
  'use strict';

  var DB_NAME = 'cityloop-outbox';
  var STORE = 'reports';
  var URL = '/m/inspector/report';
  var RETRY_MS = 5000;
  var flushing = null;
  var form = null;

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE, { keyPath: 'key' });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(result && 'result' in result ? result.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function put(item) { return withStore('readwrite', function (s) { s.put(item); }); }
  function remove(key) { return withStore('readwrite', function (s) { s.delete(key); }); }
  function all() {
    return withStore('readonly', function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).sort(function (a, b) { return a.created - b.created; });
    });
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID().replace(/-/g, ''); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  }

  var status = document.getElementById('outbox-status');
  function label(name) { return status ? status.getAttribute('data-label-' + name) : ''; }
  function say(text, kind) {
    var el = document.getElementById('outbox-message');
    if (el) { el.textContent = text; el.className = kind || ''; }
  }
  function showCount() {
    return all().then(function (items) {
      var el = document.getElementById('outbox-count');
      if (!el) { return items.length; }
      el.setAttribute('data-count', String(items.length));
      el.textContent = items.length ? label('wait') + ' ' + items.length : '';
      if (status) { status.classList.toggle('waiting', items.length > 0); }
      return items.length;
    });
  }

  function clearErrors() {
    if (!form) { return; }
    form.querySelectorAll('.field-error.client').forEach(function (e) { e.remove(); });
    form.querySelectorAll('.has-error').forEach(function (e) { e.classList.remove('has-error'); });
  }

  function showErrors(errors) {
    if (!form) { return; }
    clearErrors();
    Object.keys(errors).forEach(function (name) {
      var anchor = name === 'location' ? document.getElementById('picker')
        : form.querySelector('[name="' + name + '"]');
      var p = document.createElement('p');
      p.className = 'field-error client';
      p.setAttribute('data-field', name);
      p.textContent = errors[name];
      if (anchor && anchor.closest('.field')) {
        anchor.closest('.field').classList.add('has-error');
        anchor.closest('.field').appendChild(p);
      } else {
        form.insertBefore(p, form.firstChild);
      }
    });
  }

  function send(item) {
    var body = new FormData();
    item.fields.forEach(function (pair) { body.append(pair[0], pair[1]); });
    item.files.forEach(function (f) { body.append(f.field || 'photos', f.blob, f.name); });
    if (item.voice) { body.append('voice', item.voice.blob, item.voice.name); }
    return fetch(item.url || URL, {
      method: 'POST', body: body, credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'Idempotency-Key': item.key, 'X-CSRF-Token': csrf() },
    });
  }

  /* Send what waits, oldest first. Stops at the first network failure (no signal yet) or
     server trouble; a report the server refuses as invalid leaves the queue with its reasons. */
  function flush() {
    if (flushing) { return flushing; }
    flushing = all().then(function (items) {
      var outcome = { sent: [], refused: [] };
      var chain = Promise.resolve(true);
      items.forEach(function (item) {
        chain = chain.then(function (go) {
          if (!go) { return false; }
          return send(item).then(function (response) {
            if (response.status === 200 || response.status === 201) {
              return response.json().then(function (data) {
                outcome.sent.push({ key: item.key, ticket: data.ticket });
                return remove(item.key).then(function () { return true; });
              });
            }
            if (response.status === 422) {
              return response.json().then(function (data) {
                outcome.refused.push({ key: item.key, errors: data.errors || {}, item: item });
                return remove(item.key).then(function () { return true; });
              });
            }
            return false;  // 403 (logged out), 5xx: keep it and try later
          }, function () { return false; });  // no network
        });
      });
      return chain.then(function () { return outcome; });
    }).then(function (outcome) {
      flushing = null;
      outcome.sent.forEach(function (s) { say(label('sent') + ' ' + s.ticket, 'ok'); });
      outcome.refused.forEach(function (r) { restore(r.item); showErrors(r.errors); });
      return showCount().then(function () { return outcome; });
    }, function (error) {
      flushing = null;
      return showCount().then(function () { throw error; });
    });
    return flushing;
  }

  function restore(item) {
    if (!form) { return; }
    if (item.voice && window.cityloop.voice) { window.cityloop.voice.restore(item.voice); }
    item.fields.forEach(function (pair) {
      var input = form.querySelector('[name="' + pair[0] + '"]');
      if (input && input.type !== 'file') { input.value = pair[1]; }
    });
  }

  function validate(item) {
    var fields = {};
    item.fields.forEach(function (pair) { fields[pair[0]] = pair[1]; });
    var errors = {};
    /* The form names its required fields (data-required); the inspector's report by default. */
    var required = (form.getAttribute('data-required') || 'class_code description').split(' ');
    required.forEach(function (name) {
      if (!String(fields[name] || '').trim()) {
        var lab = form.querySelector('label[for="' + name + '"]');
        errors[name] = (document.documentElement.lang === 'en' ? 'Required: ' : '请填写') + (lab ? lab.textContent.trim() : name);
      }
    });
    if (!fields.lon || !fields.lat) {
      errors.location = document.documentElement.lang === 'en' ? 'Place the pin on the map' : '请在地图上点选问题位置';
    }
    return errors;
  }

  function onSubmit(event) {
    event.preventDefault();
    var data = new FormData(form);
    var keyInput = form.querySelector('[name="idempotency_key"]');
    var item = { key: keyInput.value || newKey(), created: Date.now(), fields: [], files: [],
      url: form.getAttribute('action') || URL };
    data.forEach(function (value, name) {
      if (value instanceof File) {
        if (value.size > 0) { item.files.push({ field: name, name: value.name, blob: value }); }
      } else if (name !== 'csrf_token' && name !== 'idempotency_key') {
        item.fields.push([name, value]);
      }
    });
    item.fields.push(['idempotency_key', item.key]);
    var errors = validate(item);
    if (Object.keys(errors).length) { showErrors(errors); return; }
    clearErrors();
    var voice = window.cityloop.voice ? window.cityloop.voice.finish() : Promise.resolve(null);
    voice.then(function (note) {
      if (note) { item.voice = note; }
      return put(item);
    }).then(function () {
      say(label('sending'), '');
      return flush();
    }).then(function (outcome) {
      var refused = outcome.refused.some(function (r) { return r.key === item.key; });
      if (refused) { return; }  // errors are shown next to the fields, the typing is kept
      var sent = outcome.sent.some(function (s) { return s.key === item.key; });
      if (!sent) { say(label('offline'), 'warn'); }
      form.reset();
      if (window.cityloop.voice) { window.cityloop.voice.clear(); }
      keyInput.value = newKey();
      if (window.cityloopPicker && window.cityloopPicker.cityloopReset) { window.cityloopPicker.cityloopReset(); }
    }).catch(function (error) { say(String(error), 'bad'); });
  }

  function attach(formId) {
    form = formId ? document.getElementById(formId) : null;
    if (form) { form.addEventListener('submit', onSubmit); }
    window.addEventListener('online', function () { flush(); });
    setInterval(function () { if (navigator.onLine !== false) { flush(); } }, RETRY_MS);
    flush().catch(function () {});
  }

  window.cityloop = Object.assign(window.cityloop || {}, {
    outbox: { attach: attach, flush: flush, all: all, count: showCount },
  });
})();
