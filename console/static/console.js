// keyward console: the copy button of a new key's page. No other script.
"use strict";
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = button.parentNode.querySelector(".copied");
  field.select();
  var done = function () { if (status) status.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () {
      if (status) status.textContent = "Select the key and copy it";
    });
  } else if (document.execCommand("copy")) {
    done();
  }
});
