// Campaign settings, peer mentoring: typing a rule or a number of the mentor role turns
// the role on, so what was typed is what is saved. Without this script the server still
// says, after saving, when peer mentoring is off and what that did.
(function () {
  var part = document.getElementById("peer-mentoring");
  if (!part) { return; }
  var on = part.querySelector("input[name=mentoring][value=yes]");
  if (!on || on.matches(":disabled")) { return; }
  part.addEventListener("input", function (event) {
    if (event.target.name !== "mentoring") { on.checked = true; }
  });
})();
