// Mentor pages: copy the invitation link, print the invitation card (no inline script: CSP).
(function () {
  "use strict";
  var copy = document.getElementById("copy-link");
  var field = document.getElementById("referral-link");
  if (copy && field) {
    copy.addEventListener("click", function () {
      var done = function () { copy.textContent = copy.getAttribute("data-copied"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
        });
      } else {
        field.select();
        if (document.execCommand && document.execCommand("copy")) { done(); }
      }
    });
  }
  var print = document.getElementById("print-card");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
})();
