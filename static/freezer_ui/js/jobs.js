/* The jobs wizard: offer only the engines and storages the chosen agent registered.
 *
 * The client select carries two JSON maps (client id -> names), written by the server from the
 * agents' client documents (workflows.py).  This only narrows what the browser offers; the
 * server refuses any other value the same way.  Loaded with every wizard modal, so it binds
 * through delegated handlers once per page.
 */
(function ($) {
  'use strict';
  if (!$ || window.freezerUiJobsWizard) {
    return;
  }
  window.freezerUiJobsWizard = true;

  function narrow(form, fieldName, allowed) {
    var select = form.find('select[name="' + fieldName + '"]');
    if (!select.length) {
      return;
    }
    var first = null;
    select.find('option').each(function () {
      var ok = allowed === null || allowed.indexOf(this.value) !== -1;
      $(this).prop('disabled', !ok).toggle(ok);
      if (ok && first === null) {
        first = this.value;
      }
    });
    // Horizon's themable select draws its own list next to the hidden <select>.
    select.closest('.themable-select').find('a[data-select-value]').each(function () {
      var ok = allowed === null || allowed.indexOf($(this).attr('data-select-value')) !== -1;
      $(this).closest('li').toggle(ok);
    });
    var current = select.val();
    if (first !== null && (current === null || (allowed !== null && allowed.indexOf(current) === -1))) {
      var link = select.closest('.themable-select').find('a[data-select-value="' + first + '"]');
      if (link.length) {
        link.trigger('click');
      } else {
        select.val(first);
      }
      select.trigger('change');
    }
  }

  function update(clientSelect) {
    var form = clientSelect.closest('form');
    var client = clientSelect.val();
    var maps = {engine_name: 'engines', storage: 'storages'};
    $.each(maps, function (fieldName, key) {
      var map = {};
      try {
        map = JSON.parse(clientSelect.attr('data-' + key) || '{}');
      } catch (e) {
        map = {};
      }
      narrow(form, fieldName, client && map[client] ? map[client] : null);
    });
  }

  $(document).on('change', 'select[name="client_id"][data-engines]', function () {
    update($(this));
  });
  // A wizard opened prefilled (clone, edit) is narrowed as soon as it is shown.
  $(document).on('shown.bs.modal', '.modal', function () {
    $(this).find('select[name="client_id"][data-engines]').each(function () {
      update($(this));
    });
  });
  $(function () {
    $('select[name="client_id"][data-engines]').each(function () {
      update($(this));
    });
  });
})(window.jQuery);
