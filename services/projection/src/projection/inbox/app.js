// The operator inbox: the waiting queue, a conversation with its messages and delivery ticks,
// claim / take over / release / close and a reply box, over the operator API of this same app.
// Plain DOM: every text from a user, an operator or the API is set with textContent, never
// parsed as HTML, so a WhatsApp message cannot inject markup or script.
"use strict";

const POLL_MS = 1500;
const KEY_STORAGE = "switchboard.operatorKey";
// The API sits beside /inbox/ (relative, so the page also works behind a path prefix).
const API = new URL("../v1/operator/", document.baseURI);

// Why the conversation refused a command (CommandResult.reason), in an operator's words.
const REFUSALS = {
  claimed_by_another: "Another operator claimed this conversation first.",
  not_waiting: "This conversation is not waiting for a person.",
  not_claimed: "Claim the conversation first.",
  not_your_conversation: "Another operator has this conversation.",
  outside_24h_window: "The 24-hour window is closed: only a template can be sent now.",
  opted_out: "The user opted out: nothing can be sent to them.",
  unknown_template: "There is no such template.",
  missing_variables: "The template needs more variables.",
  unknown_conversation: "This conversation does not exist.",
  closed: "The conversation is closed.",
  empty_reply: "Write something first.",
  invalid_command: "The conversation did not understand the command.",
  wrong_tenant: "This conversation belongs to another tenant.",
};

// A part's furthest status (read model) -> the tick WhatsApp users know.
const TICKS = {
  sent: { mark: "✓", label: "sent", cls: "tick-sent" },
  delivered: { mark: "✓✓", label: "delivered", cls: "tick-delivered" },
  read: { mark: "✓✓", label: "read", cls: "tick-read" },
  failed: { mark: "✗", label: "failed", cls: "tick-failed" },
  undelivered: { mark: "✗", label: "not delivered", cls: "tick-failed" },
  canceled: { mark: "✗", label: "canceled", cls: "tick-failed" },
  not_sent: { mark: "✗", label: "not sent", cls: "tick-failed" },
};
const PENDING_TICK = { mark: "🕓", label: "sending", cls: "tick-pending" };

// Who wrote an outbound message, by its kind (an operator's shows the operator's name).
const AUTHORS = { user: "user", reply: "bot", notice: "notice", template: "template" };

const MODES = { bot: "the bot answers", waiting: "waiting for a person", human: "with a person" };

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  selected: null, // conversation_id open on the right
  conversation: null, // its last answer
  shown: { queue: "", messages: "" }, // what is drawn, to redraw only on change
  timer: null,
  busy: false, // a command in flight: its buttons stay disabled
  retry: null, // { what, key }: the Idempotency-Key of a command that got no answer
};

// --- the key: from #key=... on first load, then sessionStorage (never in a query string) ---

function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("key");
  if (key) {
    sessionStorage.setItem(KEY_STORAGE, key);
    // Out of the address bar and the history: the key is not left where it can be copied.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORAGE);
}

function logIn(key) {
  state.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("login-view").hidden = true;
  $("inbox-view").hidden = false;
  $("logout").hidden = false;
  poll();
}

function logOut(reason) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  state.selected = null;
  state.conversation = null;
  state.shown = { queue: "", messages: "" };
  clearTimeout(state.timer);
  $("inbox-view").hidden = true;
  $("logout").hidden = true;
  $("login-view").hidden = false;
  $("conversation").hidden = true;
  $("no-conversation").hidden = false;
  $("queue").replaceChildren();
  if (reason) notify(reason);
  $("key").focus();
}

// --- the API ---

class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  if (status === 409) {
    const reason = body && body.reason;
    return `Refused: ${REFUSALS[reason] || "the conversation said no."}` +
      (reason ? ` (${reason})` : "");
  }
  if (status === 503) {
    return "The conversation service is not answering: nothing was done. Try again in a moment.";
  }
  if (status === 403) return "This key may read but not act: it is not an operator key.";
  if (status === 404) return "This conversation was not found.";
  if (status === 0) return "The inbox cannot reach the server: retrying.";
  return `The server answered ${status}.`;
}

async function api(path, { method = "GET", body, idempotencyKey } = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, Accept: "application/json" };
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
  } catch (_) {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
  if (response.status === 401) {
    logOut("The key was refused: log in again.");
    throw new ApiError(401, parsed);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const items = (page) => (Array.isArray(page) ? page : (page && page.items) || []);

// --- drawing (createElement + textContent only) ---

function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

function when(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

function userOf(conversation) {
  return (conversation.user_address || conversation.conversation_id || "").replace(/^whatsapp:/, "");
}

function modeText(conversation) {
  const mode = conversation.mode || "bot";
  const who = mode === "human" && conversation.operator_id ? ` (${conversation.operator_id})` : "";
  return `${MODES[mode] || mode}${who}`;
}

function notify(text, kind = "error") {
  const notice = $("notice");
  notice.textContent = text;
  notice.className = `notice notice-${kind}`;
  notice.hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice").textContent = "";
}

function drawQueue(conversations) {
  const fingerprint = JSON.stringify([conversations, state.selected]);
  if (fingerprint === state.shown.queue) return;
  state.shown.queue = fingerprint;
  $("queue-empty").hidden = conversations.length > 0;
  $("queue").replaceChildren(...conversations.map((c) => {
    const open = el("button", {
      cls: "queue-item",
      attrs: { type: "button", "data-conversation": c.conversation_id,
        "aria-current": String(c.conversation_id === state.selected) },
    }, [
      el("span", { cls: "queue-user", text: userOf(c) }),
      el("span", { cls: `mode mode-${c.mode || "bot"}`, text: modeText(c) }),
      c.handoff_reason ? el("span", {
        cls: "queue-reason",
        text: c.handoff_source ? `${c.handoff_source}: ${c.handoff_reason}` : c.handoff_reason,
      }) : null,
      el("time", { cls: "muted", text: when(c.waiting_since || c.requested_at || c.updated_at) }),
    ]);
    open.addEventListener("click", () => select(c.conversation_id));
    return el("li", {}, [open]);
  }));
}

function tickFor(message) {
  const status = message.delivery_status;
  const tick = TICKS[status] || PENDING_TICK;
  return el("span", {
    cls: `tick ${tick.cls}`, text: tick.mark,
    attrs: { role: "img", "aria-label": tick.label, title: status || tick.label,
      "data-status": status || "" },
  });
}

function messageItem(message) {
  const inbound = message.direction === "inbound";
  const author = message.operator_id || AUTHORS[message.kind] || (inbound ? "user" : "bot");
  const body = [];
  if (message.text) body.push(el("p", { cls: "text", text: message.text }));
  if (message.template && message.template.name) {
    body.push(el("p", { cls: "muted", text: `template: ${message.template.name}` }));
  }
  const withheld = message.reply && message.reply.handoff_reason;
  if (withheld) {
    body.push(el("p", { cls: "muted", text: `not sent: handed to a person (${withheld})` }));
  }
  for (const media of message.media || []) {
    body.push(el("p", { cls: "media muted", text: `[${media.content_type || "media"}]` }));
  }
  const transcript = message.transcription;
  if (transcript) {
    const said = transcript.status === "completed" ? transcript.text
      : transcript.status === "failed" ? "(the voice note could not be transcribed)"
      : "(transcribing…)";
    // append() of a string makes a text node: still no HTML parsing.
    body.push(el("p", { cls: "transcript" }, [el("span", { cls: "label", text: "Transcript: " }), said]));
  }
  const meta = el("p", { cls: "meta" }, [
    el("span", { cls: "author", text: author }),
    el("time", { text: when(message.created_at) }),
    inbound ? null : tickFor(message),
  ]);
  return el("li", {
    cls: `message ${inbound ? "inbound" : "outbound"}`,
    attrs: { "data-message": message.message_id || "" },
  }, [...body, meta]);
}

function drawConversation(answer) {
  const conversation = answer.conversation || answer;
  const messages = items(answer.messages);
  state.conversation = conversation;
  $("no-conversation").hidden = true;
  $("conversation").hidden = false;
  $("conversation-title").textContent = userOf(conversation);
  const closed = conversation.status === "closed";
  const optedOut = conversation.opted_out ? " · opted out" : "";
  $("conversation-state").textContent =
    `${closed ? "closed" : modeText(conversation)}${optedOut}`;
  drawActions(conversation);

  const fingerprint = JSON.stringify(messages);
  if (fingerprint === state.shown.messages) return;
  state.shown.messages = fingerprint;
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...messages.map(messageItem));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function drawActions(conversation) {
  const mode = conversation.mode || "bot";
  const open = conversation.status !== "closed";
  $("take-over").hidden = !(open && mode === "bot");
  $("claim").hidden = !(open && mode === "waiting");
  $("release").hidden = !(open && mode !== "bot");
  $("close").hidden = !open;
  for (const button of document.querySelectorAll("[data-action], #send")) {
    button.disabled = state.busy;
  }
}

// --- polling and actions ---

async function poll() {
  clearTimeout(state.timer);
  if (!state.key) return;
  try {
    drawQueue(items(await api("queue")));
    if (state.selected) {
      drawConversation(await api(`conversations/${encodeURIComponent(state.selected)}`));
    }
    $("connection").textContent = "";
  } catch (error) {
    if (error.status === 401) return;
    $("connection").textContent = error.status === 0 ? "offline, retrying…" : error.message;
  }
  if (state.key) state.timer = setTimeout(poll, POLL_MS);
}

function select(conversationId) {
  state.selected = conversationId;
  state.shown.messages = "";
  clearNotice();
  $("messages").replaceChildren();
  poll();
}

// The same command tried again after it got no answer (503, a lost connection) carries the
// same Idempotency-Key: had the first attempt reached the conversation, it is done once.
function idempotencyKey(what) {
  if (!state.retry || state.retry.what !== what) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    state.retry = { what, key: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") };
  }
  return state.retry.key;
}

async function command(action, body = {}) {
  if (!state.selected || state.busy) return false;
  state.busy = true;
  drawActions(state.conversation || {});
  clearNotice();
  const what = JSON.stringify([state.selected, action, body]);
  try {
    await api(`conversations/${encodeURIComponent(state.selected)}/${action}`,
      { method: "POST", body, idempotencyKey: idempotencyKey(what) });
    state.retry = null;
    return true;
  } catch (error) {
    if (error.status !== 0 && error.status !== 503) state.retry = null; // answered: done
    if (error.status !== 401) notify(error.message);
    return false;
  } finally {
    state.busy = false;
    drawActions(state.conversation || {});
    poll();
  }
}

function wire() {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (key) { clearNotice(); logIn(key); }
  });
  $("logout").addEventListener("click", () => logOut());
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => command(button.dataset.action));
  }
  $("reply-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("reply").value;
    if (!text.trim()) { notify(REFUSALS.empty_reply); return; }
    if (await command("reply", { text })) $("reply").value = "";
  });
  // Enter sends, Shift+Enter breaks the line (as in chat apps).
  $("reply").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("reply-form").requestSubmit();
    }
  });
}

wire();
const key = takeKeyFromFragment();
if (key) logIn(key); else logOut();
