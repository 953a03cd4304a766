// Swagger UI over the API's own OpenAPI document. "Try it out" sends the bearer token given
// with Authorize, or else the one the dashboard keeps in this tab's session storage.
(function () {
  const root = document.getElementById("swagger-ui");
  const ui = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: false,
    onComplete() {
      const token = sessionStorage.getItem("runs.token");
      if (token) {
        ui.authActions.authorize({
          bearer: { name: "bearer", schema: { type: "http", scheme: "bearer" }, value: token },
        });
      }
    },
  });
  window.ui = ui;
})();
