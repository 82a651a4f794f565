/* The inspector's voice note: record with the phone's microphone (MediaRecorder), listen to it,
   record again or remove it. The outbox asks for the recording when the report is submitted
   (finish() stops a recording still running) and keeps it in IndexedDB as a blob with the
   photos, so a note recorded without signal is sent with its report. A browser that cannot
   record keeps the plain file input (an audio file chosen from the phone). */
(function () {
  'use strict';

  var box = null;
  var recorder = null;
  var chunks = [];
  var blob = null;
  var stopped = null;  // a promise while a recording is being stopped

  function el(id) { return document.getElementById(id); }
  function label(name) { return box ? box.getAttribute('data-label-' + name) || '' : ''; }
  function show(id, visible) { var e = el(id); if (e) { e.hidden = !visible; } }
  function status(text) { var e = el('voice-status'); if (e) { e.textContent = text || ''; } }

  function extension(type) {
    var kind = (type || '').split(';')[0];
    return { 'audio/webm': 'webm', 'audio/ogg': 'ogg', 'audio/mp4': 'm4a', 'audio/mpeg': 'mp3',
      'audio/aac': 'aac', 'audio/wav': 'wav' }[kind] || 'webm';
  }

  function preview() {
    var audio = el('voice-preview');
    if (audio) {
      if (audio.src) { URL.revokeObjectURL(audio.src); audio.removeAttribute('src'); }
      if (blob) { audio.src = URL.createObjectURL(blob); }
    }
    show('voice-preview', !!blob);
    show('voice-remove', !!blob);
    if (box) { box.setAttribute('data-size', blob ? String(blob.size) : '0'); }
  }

  function start() {
    if (recorder) { return; }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (event) { if (event.data && event.data.size) { chunks.push(event.data); } };
      recorder.start();
      show('voice-record', false);
      show('voice-stop', true);
      status(label('recording'));
      if (box) { box.setAttribute('data-state', 'recording'); }
    }, function () {
      status(label('denied'));
    });
  }

  function stop() {
    if (!recorder) { return Promise.resolve(blob); }
    if (stopped) { return stopped; }
    var active = recorder;
    stopped = new Promise(function (resolve) {
      active.onstop = function () {
        var type = active.mimeType || (chunks[0] && chunks[0].type) || 'audio/webm';
        blob = chunks.length ? new Blob(chunks, { type: type }) : null;
        active.stream.getTracks().forEach(function (track) { track.stop(); });
        recorder = null;
        stopped = null;
        show('voice-record', true);
        show('voice-stop', false);
        status('');
        if (box) { box.setAttribute('data-state', blob ? 'recorded' : 'idle'); }
        preview();
        resolve(blob);
      };
      active.stop();
    });
    return stopped;
  }

  /* The note to send with the report ({name, blob}) or null; stops a recording first. */
  function finish() {
    if (!box) { return Promise.resolve(null); }
    return stop().then(function (recorded) {
      return recorded ? { name: 'voice.' + extension(recorded.type), blob: recorded } : null;
    });
  }

  function clear() {
    blob = null;
    if (box) { box.setAttribute('data-state', 'idle'); }
    preview();
  }

  /* A refused report comes back to the form with its note. */
  function restore(voice) {
    if (!box || !voice || !voice.blob) { return; }
    blob = voice.blob;
    box.setAttribute('data-state', 'recorded');
    preview();
  }

  function attach(id) {
    var candidate = el(id);
    var can = candidate && window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    if (!can) { return; }  // keep the file input
    box = candidate;
    box.hidden = false;
    var input = el('voice');
    if (input) { input.hidden = true; input.disabled = true; }
    el('voice-record').addEventListener('click', start);
    el('voice-stop').addEventListener('click', function () { stop(); });
    el('voice-remove').addEventListener('click', clear);
    box.setAttribute('data-state', 'idle');
  }

  window.cityloop = Object.assign(window.cityloop || {}, {
    voice: { attach: attach, finish: finish, clear: clear, restore: restore },
  });
})();
