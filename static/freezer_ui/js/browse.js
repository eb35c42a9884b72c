/*
 * freezer-ui generation browser: a lazily loaded directory tree.
 *
 * The page already lists the current directory (server-rendered, works without JavaScript).
 * This script adds the tree on the left: each directory's children are fetched from the
 * browser's REST endpoint (/api/freezer_ui/backups/<id>/dir/?path=) only when it is opened,
 * since a generation may hold millions of files.  Names come from backups: they are inserted
 * with textContent only, never as HTML.
 */
(function () {
  'use strict';

  var PAGE = 500;

  function dirUrl(api, path, offset) {
    return api + 'dir/?path=' + encodeURIComponent(path) + '&offset=' + offset + '&limit=' + PAGE;
  }

  function fetchJson(url) {
    return fetch(url, {
      credentials: 'same-origin',
      headers: {'X-Requested-With': 'XMLHttpRequest', 'Accept': 'application/json'}
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error(typeof body === 'string' ? body : response.statusText);
        }
        return body;
      });
    });
  }

  function Tree(root) {
    this.root = root;
    this.api = root.getAttribute('data-api-url');
    this.detail = root.getAttribute('data-detail-url');
    this.current = root.getAttribute('data-path') || '';
  }

  Tree.prototype.node = function (name, path) {
    var li = document.createElement('li');
    li.className = 'freezer-tree-node';
    var toggle = document.createElement('button');
    toggle.type = 'button';
    toggle.className = 'btn btn-link btn-xs freezer-tree-toggle';
    toggle.setAttribute('aria-expanded', 'false');
    toggle.textContent = '+';
    var link = document.createElement('a');
    link.href = this.detail + (path ? '?path=' + encodeURIComponent(path) : '');
    link.textContent = name;
    if (path === this.current) {
      link.className = 'freezer-tree-current';
    }
    li.appendChild(toggle);
    li.appendChild(link);
    var self = this;
    toggle.addEventListener('click', function () {
      self.toggle(li, toggle, path);
    });
    return li;
  };

  Tree.prototype.toggle = function (li, toggle, path) {
    var list = li.querySelector(':scope > ul');
    if (list) {
      var open = list.hidden;
      list.hidden = !open;
      toggle.textContent = open ? '\u2212' : '+';
      toggle.setAttribute('aria-expanded', String(open));
      return Promise.resolve();
    }
    list = document.createElement('ul');
    li.appendChild(list);
    toggle.textContent = '\u2212';
    toggle.setAttribute('aria-expanded', 'true');
    return this.load(list, path, 0);
  };

  Tree.prototype.load = function (list, path, offset) {
    var self = this;
    var status = document.createElement('li');
    status.className = 'text-muted';
    status.textContent = '\u2026';
    list.appendChild(status);
    return fetchJson(dirUrl(this.api, path, offset)).then(function (page) {
      list.removeChild(status);
      page.items.forEach(function (entry) {
        if (entry.type === 'dir') {
          list.appendChild(self.node(entry.name, entry.path));
        }
      });
      if (page.has_more) {
        var more = document.createElement('li');
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'btn btn-link btn-xs';
        button.textContent = '\u2026';
        button.addEventListener('click', function () {
          list.removeChild(more);
          self.load(list, path, offset + PAGE);
        });
        more.appendChild(button);
        list.appendChild(more);
      }
    }).catch(function (error) {
      status.className = 'text-danger';
      status.textContent = error.message;
    });
  };

  /* Open the tree down to the directory the page shows. */
  Tree.prototype.reveal = function (li, parts, depth) {
    if (depth >= parts.length) {
      return;
    }
    var self = this;
    var path = parts.slice(0, depth + 1).join('/');
    var children = li.querySelectorAll(':scope > ul > li.freezer-tree-node');
    for (var i = 0; i < children.length; i++) {
      var link = children[i].querySelector(':scope > a');
      if (link && link.textContent === parts[depth]) {
        var child = children[i];
        var toggle = child.querySelector(':scope > button');
        self.toggle(child, toggle, path).then(function () {
          self.reveal(child, parts, depth + 1);
        });
        return;
      }
    }
  };

  Tree.prototype.start = function () {
    var container = this.root.querySelector('.freezer-tree');
    if (!container || !this.api || typeof fetch !== 'function') {
      return;
    }
    var top = document.createElement('ul');
    top.className = 'freezer-tree-root';
    var rootNode = this.node('/', '');
    top.appendChild(rootNode);
    container.appendChild(top);
    var self = this;
    var parts = this.current ? this.current.split('/') : [];
    this.toggle(rootNode, rootNode.querySelector('button'), '').then(function () {
      self.reveal(rootNode, parts, 0);
    });
  };

  function init() {
    var browsers = document.querySelectorAll('.freezer-browser');
    for (var i = 0; i < browsers.length; i++) {
      new Tree(browsers[i]).start();
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
