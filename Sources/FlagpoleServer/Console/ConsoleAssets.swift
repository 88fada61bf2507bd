/// The console's stylesheet and its one script, served as static routes (the
/// Content-Security-Policy allows no inline style or script). No external fonts or CDNs.
enum ConsoleAssets {
    /// One small stylesheet: dark text on light, readable on a laptop and a phone.
    static let stylesheet = """
        *{box-sizing:border-box}
        body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;background:#f6f8fa}
        header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;padding:.6rem 1rem;background:#fff;border-bottom:1px solid #d0d7de}
        .brand{font-weight:700;color:#1f2328;text-decoration:none}
        .env{padding:.1rem .5rem;border-radius:1rem;background:#ddf4ff;color:#0969da;font-weight:600}
        .env.prod{background:#ffebe9;color:#cf222e}
        nav{display:flex;gap:.9rem;flex-wrap:wrap}
        nav a{color:#1f2328;text-decoration:none;font-weight:500}
        nav a:hover{text-decoration:underline}
        form.who{margin-left:auto;display:flex;gap:.5rem;align-items:center;color:#57606a}
        main{max-width:1100px;margin:0 auto;padding:1rem}
        h1{font-size:1.5rem;margin:.4rem 0 .8rem;word-break:break-all}
        h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
        a{color:#0969da}
        table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d0d7de;border-radius:6px;font-size:14px}
        th,td{text-align:left;padding:.4rem .55rem;border-bottom:1px solid #eaeef2;vertical-align:top}
        td{overflow-wrap:break-word}
        th{background:#f6f8fa;font-weight:600;white-space:nowrap}
        tr.stale td{background:#fff8c5}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:.7rem}
        .card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.7rem .8rem}
        .card.warn{border-color:#d4a72c;background:#fff8c5}
        .card .label{color:#57606a;font-size:13px}
        .card .value{font-size:1.35rem;font-weight:600}
        .card .sub{color:#57606a;font-size:13px}
        .quiet{color:#57606a}
        .problem{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:.5rem .7rem}
        .note,.hint{background:#ddf4ff;border:1px solid #54aeff;border-radius:6px;padding:.5rem .7rem}
        .badge{display:inline-block;padding:0 .4rem;border-radius:1rem;background:#eaeef2;font-size:12px;color:#1f2328;text-decoration:none}
        .badge.warn{background:#fff8c5;color:#7d4e00}
        .verdict,.status{font-weight:600}
        .verdict.revert,.status.reverted,.status.aborted,.status.stopped{color:#cf222e}
        .verdict.advance,.verdict.complete,.status.completed,.status.running{color:#1a7f37}
        .verdict.hold,.status.paused{color:#7d4e00}
        pre{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.7rem;overflow:auto;font-size:13px}
        code{font-size:13px}
        .filters{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:.6rem}
        input,select,textarea,button{font:inherit}
        input[type=text],input[type=search],input[type=password],select,textarea{padding:.35rem .5rem;border:1px solid #d0d7de;border-radius:6px;background:#fff;color:#1f2328;max-width:100%}
        textarea{width:100%}
        label{display:block;margin:.3rem 0}
        label.inline{display:inline}
        button{padding:.35rem .8rem;border:1px solid #1f883d;border-radius:6px;background:#1f883d;color:#fff;cursor:pointer}
        button.danger{background:#cf222e;border-color:#cf222e}
        button.link{background:none;border:none;color:#0969da;padding:0}
        .actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.7rem}
        form.action{display:flex;flex-direction:column;gap:.45rem}
        .chartbox{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.5rem}
        svg.chart{width:100%;height:auto;display:block}
        .legend{font-size:13px;color:#57606a}
        .key::before{content:"";display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle;background:#57606a}
        .key.treatment::before{background:#cf222e}
        .key.control::before{background:#0969da}
        .key.allowance::before{background:#bf8700}
        .key.ceiling::before{background:#cf222e;height:1px}
        ol.steps{display:flex;flex-wrap:wrap;gap:.4rem;list-style:none;padding:0}
        ol.steps li{padding:.2rem .6rem;border-radius:1rem;background:#eaeef2}
        ol.steps li.done{background:#dafbe1}
        ol.steps li.current{background:#0969da;color:#fff}
        .prod{font-weight:600;color:#cf222e}
        @media (max-width:640px){main{padding:.6rem}table{display:block;overflow-x:auto;font-size:13px}th,td{padding:.3rem}}
        """

    /// Live refresh: reloads the page when the daemon's events stream says the environment changed
    /// (or a `tick` for pages whose data grows by the minute), never while a field has focus;
    /// without `EventSource`, or when the stream fails, a plain reload after `data-reload` seconds.
    static let script = """
        (function () {
          "use strict";
          var body = document.body;
          if (!body || body.getAttribute("data-live") !== "1") return;
          var fallback = (parseInt(body.getAttribute("data-reload"), 10) || 30) * 1000;
          var pending = false;
          function busy() {
            var a = document.activeElement;
            return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
          }
          function reload() {
            if (busy()) { pending = true; return; }
            window.location.reload();
          }
          document.addEventListener("focusout", function () { if (pending) { setTimeout(reload, 0); } });
          if (!window.EventSource) { setTimeout(reload, fallback); return; }
          var source = new EventSource(body.getAttribute("data-events"));
          source.addEventListener("change", reload);
          source.addEventListener("tick", reload);
          source.onerror = function () { source.close(); setTimeout(reload, fallback); };
        })();
        """
}
