// The door page's QR scan: where the browser reads QR codes (BarcodeDetector), a button
// opens the camera; the first code read fills the code field and submits the form.
// Without it the organiser types the code. No data leaves the page but the form post.
(function () {
  "use strict";
  var scan = document.getElementById("scan");
  var form = document.getElementById("code-form");
  if (!scan || !form || !("BarcodeDetector" in window) || !navigator.mediaDevices) {
    return;
  }
  var panel = document.getElementById("scanner");
  var video = document.getElementById("camera");
  var status = document.getElementById("scan-status");
  var stop = document.getElementById("scan-stop");
  var stream = null;
  var detector = null;

  function close() {
    if (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
    }
    panel.hidden = true;
  }

  function look() {
    if (!stream) { return; }
    detector.detect(video).then(function (codes) {
      var text = codes.length ? (codes[0].rawValue || "") : "";
      var found = text.replace(/[^A-Za-z0-9]/g, "");
      if (found.length >= 8) {
        document.getElementById("code").value = found.slice(-8);
        document.getElementById("scanned").value = "1";
        close();
        form.submit();
        return;
      }
      window.requestAnimationFrame(look);
    }).catch(function () { window.setTimeout(look, 250); });
  }

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") < 0) { return; }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    scan.hidden = false;
  }).catch(function () {});

  scan.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        panel.hidden = false;
        return video.play();
      })
      .then(look)
      .catch(function () {
        panel.hidden = false;
        status.textContent = "The camera could not be opened: type the code instead.";
      });
  });
  stop.addEventListener("click", close);
}());
