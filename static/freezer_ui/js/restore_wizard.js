/*
 * The restore wizard's client side (freezer_ui/dashboards/project/freezer_restore):
 *  - step 1: shows which generation a point in time resolves to (resolve endpoint) and keeps
 *    it in the hidden "resolved_generation" field, which the server checks on submit;
 *  - step 2: a lazy tree of the chosen generation with checkboxes (tree endpoint); the ticked
 *    paths go into the hidden "paths" field as a JSON list;
 *  - step 4: a summary of the choices;
 *  - the progress page: polls the job's state and shows progress, then the summary or error.
 * Everything from the server is inserted as text (textContent), never as HTML.
 */
(function () {
  'use strict';

  function byName(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function selectedText(select) {
    if (!select || select.selectedIndex < 0) { return ''; }
    return select.options[select.selectedIndex].text;
  }

  function getJSON(url, onDone) {
    var xhr = new XMLHttpRequest();
    xhr.open('GET', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        onDone(null, body);
      } else {
        // Our views answer {"error": ...}; Horizon's REST views a bare JSON string.
        var message = typeof body === 'string' ? body : (body && body.error);
        onDone(message || (xhr.status + ' ' + xhr.statusText), body);
      }
    };
    xhr.onerror = function () { onDone('network error', null); };
    xhr.send();
  }

  function query(params) {
    return Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]);
    }).join('&');
  }

  // ------------------------------------------------------------------------------ wizard
  function initWizard(root) {
    var form = root.querySelector('form');
    if (!form) { return; }
    var generations = JSON.parse(root.getAttribute('data-generations') || '[]');
    var when = byName(form, 'when');
    var generationSelect = byName(form, 'generation_id');
    var pointInTime = byName(form, 'point_in_time');
    var resolvedField = byName(form, 'resolved_generation');
    var resolvedBox = root.querySelector('#restore-resolved');
    var resolved = null;  // {id, backup_id, label} from the resolve endpoint

    function generationById(id) {
      for (var i = 0; i < generations.length; i++) {
        if (generations[i].id === id) { return generations[i]; }
      }
      return null;
    }

    function currentGeneration() {
      if (when && when.value === 'point_in_time') { return resolved; }
      return generationSelect ? generationById(generationSelect.value) : null;
    }

    function showResolved(text, isError) {
      if (!resolvedBox) { return; }
      resolvedBox.hidden = !text;
      resolvedBox.classList.toggle('alert-danger', !!isError);
      resolvedBox.querySelector('.freezer-resolved-text').textContent = text || '';
    }

    function resolve() {
      resolved = null;
      resolvedField.value = '';
      if (!pointInTime || !pointInTime.value) { showResolved(''); tree.reset(); return; }
      var url = root.getAttribute('data-resolve-url') + '?' + query({at: pointInTime.value});
      var asked = pointInTime.value;
      getJSON(url, function (error, body) {
        if (asked !== pointInTime.value) { return; }  // a newer request is under way
        if (error) {
          showResolved(error, true);
        } else {
          resolved = body.generation;
          resolvedField.value = resolved.id;
          showResolved(resolved.label + ' (' + resolved.id.slice(0, 12) + ')', false);
        }
        tree.reset();
      });
    }

    var tree = initTree(root, form, currentGeneration);
    if (pointInTime) {
      pointInTime.addEventListener('change', resolve);
      pointInTime.addEventListener('input', resolve);
      if (pointInTime.value) { resolve(); }
    }
    if (when) {
      when.addEventListener('change', function () {
        if (when.value === 'point_in_time') { resolve(); } else { showResolved(''); tree.reset(); }
      });
    }
    if (generationSelect) { generationSelect.addEventListener('change', tree.reset); }

    function review() {
      var gen = currentGeneration();
      var set = function (key, text) {
        var dd = root.querySelector('[data-review="' + key + '"]');
        if (dd) { dd.textContent = text || '-'; }
      };
      set('generation', gen ? gen.label + ' (' + gen.id.slice(0, 12) + ')' : '');
      var scope = byName(form, 'scope');
      // Typed paths (sources without a tree) or the tree's ticks.
      var typed = byName(form, 'paths_text');
      var paths = typed ? typed.value.split('\n').map(function (p) { return p.trim(); })
        .filter(function (p) { return p; }) : tree.selected();
      set('paths', scope && scope.value === 'selected' ? paths.join(', ') : selectedText(scope));
      set('client', selectedText(byName(form, 'client_id')));
      set('target', (byName(form, 'target') || {}).value);
      set('overwrite', selectedText(byName(form, 'overwrite')));
    }
    // Bootstrap's tab event (the wizard's tabs), and the final button as a fallback.
    if (window.jQuery) {
      window.jQuery(form).on('shown.bs.tab', 'a[data-toggle="tab"]', review);
    }
    form.addEventListener('click', function (e) {
      if (e.target.closest && e.target.closest('.button-next, .button-final')) {
        window.setTimeout(review, 0);
      }
    });
    review();
  }

  // ------------------------------------------------------------------------------ tree picker
  var PAGE = 500;  // entries per request; "Show more…" asks for the next page

  function sizeText(bytes) {
    var units = ['B', 'KB', 'MB', 'GB', 'TB'];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit ? value.toFixed(1) : String(value)) + ' ' + units[unit];
  }

  function initTree(root, form, currentGeneration) {
    var box = root.querySelector('#restore-tree');
    var pathsField = byName(form, 'paths');
    var counter = root.querySelector('#restore-selected-count');
    var treeUrl = root.getAttribute('data-tree-url');
    var selection = {};
    var loadedFor = null;

    function selected() { return Object.keys(selection).sort(); }

    function sync() {
      var paths = selected();
      pathsField.value = JSON.stringify(paths);
      if (counter) { counter.textContent = String(paths.length); }
    }

    function text(key) { return box.getAttribute('data-' + key + '-text') || ''; }

    function note(list, message, cls) {
      var li = document.createElement('li');
      li.className = 'freezer-tree-note ' + (cls || 'text-muted');
      li.textContent = message;
      list.appendChild(li);
      return li;
    }

    function load(list, backupId, path, offset) {
      var loading = note(list, text('loading'));
      var url = treeUrl + encodeURIComponent(backupId) + '/dir/?' +
        query({path: path, offset: offset, limit: PAGE});
      getJSON(url, function (error, body) {
          list.removeChild(loading);
          if (error) { note(list, error, 'text-danger'); return; }
          var items = body.items || [];
          if (!items.length && !offset) { note(list, text('empty')); }
          items.forEach(function (entry) { list.appendChild(node(entry, backupId)); });
          if (body.has_more) {
            var more = note(list, '');
            var link = document.createElement('a');
            link.href = '#';
            link.textContent = text('more');
            link.addEventListener('click', function (e) {
              e.preventDefault();
              list.removeChild(more);
              load(list, backupId, path, offset + items.length);
            });
            more.appendChild(link);
          }
        });
    }

    function node(entry, backupId) {
      var li = document.createElement('li');
      li.setAttribute('role', 'treeitem');
      li.className = 'freezer-tree-' + entry.type;
      var isDir = entry.type === 'dir';
      var toggle = document.createElement('button');
      toggle.type = 'button';
      toggle.className = 'btn btn-link btn-xs freezer-tree-toggle';
      toggle.innerHTML = isDir ? '<span class="fa fa-caret-right"></span>' : '';
      toggle.disabled = !isDir;
      var label = document.createElement('label');
      var check = document.createElement('input');
      check.type = 'checkbox';
      check.value = entry.path;
      check.checked = !!selection[entry.path];
      check.addEventListener('change', function () {
        if (check.checked) { selection[entry.path] = true; } else { delete selection[entry.path]; }
        sync();
      });
      var name = document.createElement('span');
      name.className = 'freezer-tree-name';
      name.textContent = ' ' + entry.name + (isDir ? '/' : '');
      label.appendChild(check);
      label.appendChild(name);
      if (!isDir && typeof entry.size === 'number') {
        var size = document.createElement('small');
        size.className = 'text-muted';
        size.textContent = ' ' + sizeText(entry.size);
        label.appendChild(size);
      }
      li.appendChild(toggle);
      li.appendChild(label);
      if (isDir) {
        var children = null;
        toggle.setAttribute('aria-expanded', 'false');
        toggle.addEventListener('click', function () {
          var open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
          toggle.firstChild.className = 'fa ' + (open ? 'fa-caret-down' : 'fa-caret-right');
          if (!children) {
            children = document.createElement('ul');
            children.setAttribute('role', 'group');
            li.appendChild(children);
            load(children, backupId, entry.path, 0);
          }
          children.hidden = !open;
        });
      }
      return li;
    }

    function reset() {
      if (!box) { return; }
      var gen = currentGeneration();
      var key = gen ? gen.backup_id : null;
      if (key === loadedFor) { return; }
      loadedFor = key;
      selection = {};
      sync();
      box.textContent = '';
      var list = document.createElement('ul');
      list.setAttribute('role', 'group');
      box.appendChild(list);
      if (!gen) { note(list, text('pick-generation')); return; }
      load(list, gen.backup_id, '', 0);
    }

    if (box) {
      // Keep a selection the server sent back (a re-rendered page after an error).
      try {
        JSON.parse(pathsField.value || '[]').forEach(function (p) { selection[p] = true; });
      } catch (e) { selection = {}; }
      var kept = selection;
      reset();
      selection = kept;
      sync();
    }
    return {reset: reset, selected: selected};
  }

  // ------------------------------------------------------------------------------ progress
  function initProgress(root) {
    var url = root.getAttribute('data-state-url');
    var field = function (name) { return root.querySelector('[data-field="' + name + '"]'); };
    var setText = function (name, value) {
      var el = field(name);
      if (el) { el.textContent = (value === null || value === undefined || value === '') ? '-' : String(value); }
    };
    var failures = 0;

    function render(state) {
      setText('state_text', state.state_text);
      var live = state.state === 'running' || state.state === 'waiting';
      root.querySelector('.freezer-progress-live').hidden = !live;
      field('waiting').hidden = state.state !== 'waiting';
      var p = state.progress || {};
      var percent = Math.max(0, Math.min(100, Math.round(p.percent || 0)));
      var bar = root.querySelector('.progress-bar');
      bar.style.width = percent + '%';
      bar.setAttribute('aria-valuenow', String(percent));
      setText('percent', percent);
      setText('bytes', (p.bytes_done_text || '0') + ' / ' + (p.bytes_total_text || '0'));
      setText('rate', p.rate_text);
      setText('eta', p.eta_text);
      var s = state.summary || {};
      var hasSummary = Object.keys(s).length > 0;
      root.querySelector('.freezer-restore-summary').hidden = !hasSummary;
      if (hasSummary) {
        setText('files', s.files);
        setText('summary_bytes', s.bytes_text);
        setText('duration', s.duration_text);
        var verified = field('verified');
        verified.textContent = verified.getAttribute(s.verified ? 'data-yes' : 'data-no');
        if (s.target) { setText('target', s.target); }
      }
      root.querySelector('.freezer-restore-error').hidden = !state.error;
      setText('error', state.error);
      field('note').hidden = !state.note;
      field('note').textContent = state.note || '';
      var log = state.log || [];
      root.querySelector('.freezer-restore-log').hidden = !(state.error && log.length);
      field('log').textContent = log.join('\n');
      root.setAttribute('data-state', state.state);
      return live;
    }

    function poll() {
      getJSON(url, function (error, body) {
        if (error) {
          failures += 1;
          root.querySelector('.freezer-restore-error').hidden = false;
          setText('error', error);
          if (failures < 30) { window.setTimeout(poll, 3000); }
          return;
        }
        failures = 0;
        if (render(body)) { window.setTimeout(poll, 1000); }
      });
    }

    var initial = root.getAttribute('data-state');
    if (initial === 'waiting' || initial === 'running' || initial === '') { poll(); }
  }

  function start() {
    var wizard = document.getElementById('restore-wizard');
    if (wizard) { initWizard(wizard); }
    var progress = document.getElementById('restore-progress');
    if (progress) { initProgress(progress); }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
