// Paddock's one script: passkeys (WebAuthn). Every page works without it; a
// passkey form then says that it needs JavaScript.
//
// A form marked data-passkey="register|login|reauth" is taken over: the script
// posts the form's fields (its CSRF token included) to data-options, gets the
// options for navigator.credentials, lets the browser create or use a passkey,
// puts the answer in the form's hidden `credential` field and submits the form
// as usual. The server answers with an ordinary page.
"use strict";

(function () {
  const supported = typeof window.PublicKeyCredential === "function" &&
    navigator.credentials && typeof navigator.credentials.create === "function";

  function bytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function text(buffer) {
    if (!buffer) {
      return null;
    }
    let binary = "";
    for (const b of new Uint8Array(buffer)) {
      binary += String.fromCharCode(b);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: bytes(c.id) }));
  }

  async function create(options) {
    const publicKey = Object.assign({}, options.publicKey, {
      challenge: bytes(options.publicKey.challenge),
      user: Object.assign({}, options.publicKey.user, { id: bytes(options.publicKey.user.id) }),
      excludeCredentials: withIds(options.publicKey.excludeCredentials),
    });
    const credential = await navigator.credentials.create({ publicKey });
    const response = credential.response;
    return {
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: text(response.attestationObject),
        clientDataJSON: text(response.clientDataJSON),
        transports: typeof response.getTransports === "function" ? response.getTransports() : null,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  async function get(options) {
    const publicKey = Object.assign({}, options.publicKey, {
      challenge: bytes(options.publicKey.challenge),
      allowCredentials: withIds(options.publicKey.allowCredentials),
    });
    const credential = await navigator.credentials.get({ publicKey });
    const response = credential.response;
    return {
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: text(response.authenticatorData),
        clientDataJSON: text(response.clientDataJSON),
        signature: text(response.signature),
        userHandle: text(response.userHandle),
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  // The options, or null when the server sent the browser elsewhere (sign in
  // again, confirm it's you): then the browser goes there.
  async function fetchOptions(form) {
    const response = await fetch(form.dataset.options, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.redirected) {
      window.location.assign(response.url);
      return null;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.error || "Paddock could not start the passkey check. Reload the page and try again.");
    }
    return body;
  }

  function say(form, message) {
    let box = form.querySelector(".passkey-problem");
    if (box) {
      box.remove();
    }
    if (!message) {
      return;
    }
    box = document.createElement("div");
    box.className = "alert passkey-problem";
    box.setAttribute("role", "alert");
    const p = document.createElement("p");
    p.textContent = message;
    box.appendChild(p);
    form.insertBefore(box, form.firstChild);
  }

  function problem(error) {
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      return "The passkey was not used: the browser's prompt was closed or timed out. Try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This authenticator already holds a passkey for your account.";
    }
    return (error && error.message) || "The passkey did not work. Try again.";
  }

  function takeOver(form) {
    const button = form.querySelector("button[type=submit]");
    let busy = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      button.disabled = true;
      say(form, "");
      try {
        const options = await fetchOptions(form);
        if (!options) {
          return;
        }
        const answer = form.dataset.passkey === "register" ? await create(options) : await get(options);
        form.elements.credential.value = JSON.stringify(answer);
        form.submit();
      } catch (error) {
        say(form, problem(error));
        button.disabled = false;
        busy = false;
      }
    });
  }

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const hint = form.querySelector(".needs-js");
    if (!supported) {
      if (hint) {
        hint.textContent = "This browser cannot use passkeys.";
      }
      continue;
    }
    if (hint) {
      hint.hidden = true;
    }
    for (const button of form.querySelectorAll("button[hidden]")) {
      button.hidden = false;
    }
    takeOver(form);
  }
})();
