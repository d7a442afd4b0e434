// Records, on <body>, how many images the browser decoded (data-images-ok of data-images-total);
// the page does not need it to display. sattag.viz.report inlines it.
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
    else { console.error("image not decoded: " + imgs[i].alt); }
  }
  document.body.dataset.imagesOk = String(ok);
  document.body.dataset.imagesTotal = String(imgs.length);
});
