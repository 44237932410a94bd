// Live character and segment count for SMS fields (the page works without it).
(function () {
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€\f";
  function count(text) {
    var gsm = true, units = 0, i, c;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      if (GSM.indexOf(c) < 0 && EXT.indexOf(c) < 0) { gsm = false; break; }
    }
    if (gsm) {
      for (i = 0; i < text.length; i++) units += EXT.indexOf(text.charAt(i)) >= 0 ? 2 : 1;
    } else {
      units = Array.from(text).length;
    }
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var segments = units === 0 ? 0 : (units <= single ? 1 : Math.ceil(units / multi));
    return units + " characters, " + segments + " segment" + (segments === 1 ? "" : "s") +
      " (" + (gsm ? "GSM-7" : "UCS-2") + ", before placeholders are filled)";
  }
  document.querySelectorAll("textarea[data-sms-count]").forEach(function (area) {
    var out = document.getElementById(area.getAttribute("data-sms-count"));
    function update() { out.textContent = count(area.value); }
    area.addEventListener("input", update);
    update();
  });
})();
