// New campaign: using a part of the form (typing a name, picking a catalog design,
// choosing a file) picks that part's option, so what is used is what was touched. The
// server does the same for a chosen file, so the page works without this script.
(function () {
  document.querySelectorAll("fieldset[data-source]").forEach(function (part) {
    var radio = part.querySelector("input[name=source]");
    part.addEventListener("change", function (event) {
      if (event.target !== radio) { radio.checked = true; }
    });
    part.addEventListener("input", function (event) {
      if (event.target !== radio) { radio.checked = true; }
    });
  });
})();
