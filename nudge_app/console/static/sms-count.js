// Live length of SMS fields as GOV.UK Notify counts the message once its placeholders are
// filled (links at full length, a long first name): the page works without it, and the
// campaign page and the preview show the same count from the server.
(function () {
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€";
  var DOWNGRADE = {"\u2011": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": "\"", "\u201d": "\"", "\u201e": "\"",
    "\u180e": "", "\u200b": "", "\u200c": "", "\u2060": "", "\ufeff": "", "\u2028": "",
    "\u2029": "", "\u00a0": " ", "\u202f": " ", "\t": " "};
  function fill(text, values) {
    return text.replace(/\{\{|\}\}|\{([A-Za-z_]+)\}/g, function (m, name) {
      if (m === "{{") return "{";
      if (m === "}}") return "}";
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : m;
    });
  }
  function tidy(text) {
    var chars = Array.from(text), out = "";
    chars.forEach(function (c) { out += Object.prototype.hasOwnProperty.call(DOWNGRADE, c) ? DOWNGRADE[c] : c; });
    out = out.replace(/\r\n/g, "\n").split("\n").map(function (line) {
      return line.split(/\s+/).filter(Boolean).join(" ");
    }).join("\n");
    return out.replace(/ +([,.:;!?])/g, "$1").replace(/\n{3,}/g, "\n\n").trim();
  }
  function count(text) {
    var chars = Array.from(tidy(text)), gsm = true, units = 0;
    chars.forEach(function (c) { if (GSM.indexOf(c) < 0 && EXT.indexOf(c) < 0) gsm = false; });
    if (gsm) {
      chars.forEach(function (c) { units += EXT.indexOf(c) >= 0 ? 2 : 1; });
    } else {
      units = chars.length;
    }
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var fragments = units === 0 ? 0 : (units <= single ? 1 : Math.ceil(units / multi));
    return units + " characters, " + fragments + " fragment" + (fragments === 1 ? "" : "s") +
      " (" + (gsm ? "GSM-7" : "Unicode") + "), as Notify counts it with the placeholders filled";
  }
  document.querySelectorAll("textarea[data-sms-count]").forEach(function (area) {
    var out = document.getElementById(area.getAttribute("data-sms-count"));
    var values = {};
    try { values = JSON.parse(area.getAttribute("data-sample-values") || "{}"); } catch (e) { values = {}; }
    function update() { out.textContent = count(fill(area.value, values)); }
    area.addEventListener("input", update);
    update();
  });
})();
