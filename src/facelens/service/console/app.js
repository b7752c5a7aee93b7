// facelens console: plain JS against the /v1 API (no build step). The key stays in this tab (sessionStorage).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem("facelens-key") || "", scope: "", captures: [] };

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.key };
  let payload = body;
  if (body && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return data;
}

const gallery = () => $("gallery").value || "default";
const enc = encodeURIComponent;

// -- sign in -----------------------------------------------------------------------------------------
async function signIn(key) {
  state.key = key.trim();
  try {
    const me = await api("GET", "/v1/whoami");
    state.scope = me.scope;
    sessionStorage.setItem("facelens-key", state.key);
    $("whoami").textContent = `key ${me.key_id}${me.name ? " (" + me.name + ")" : ""} · ${me.scope}`;
    document.body.classList.toggle("reader", me.scope !== "admin");
    $("app").hidden = false;
    $("signout").hidden = false;
    $("key").value = "";
    status("Signed in.");
    await loadGalleries();
  } catch (err) {
    state.key = "";
    sessionStorage.removeItem("facelens-key");
    $("app").hidden = true;
    status("Sign-in failed: " + err.message, true);
  }
}

function signOut() {
  state.key = "";
  sessionStorage.removeItem("facelens-key");
  $("app").hidden = true;
  $("signout").hidden = true;
  $("whoami").textContent = "";
  status("Signed out.");
}

// -- galleries and people ----------------------------------------------------------------------------
async function loadGalleries(select) {
  const data = await api("GET", "/v1/galleries");
  const current = select || gallery();
  $("gallery").replaceChildren(...data.galleries.map((g) => new Option(g.name, g.name)));
  if (data.galleries.some((g) => g.name === current)) $("gallery").value = current;
  await Promise.all([loadPeople(), loadClusters()]);
}

async function loadPeople() {
  try {
    const [stats, data] = await Promise.all([
      api("GET", `/v1/galleries/${enc(gallery())}`),
      api("GET", `/v1/galleries/${enc(gallery())}/people`),
    ]);
    $("gallery-stats").textContent =
      `${stats.people} people, ${stats.faces} faces · model ${stats.model_id}` +
      (stats.open_set_threshold !== null ? ` · open-set threshold ${stats.open_set_threshold}` : "");
    const rows = data.people.map((person) => {
      const tr = document.createElement("tr");
      tr.dataset.name = person.name;
      for (const text of [person.name, String(person.face_count), JSON.stringify(person.metadata)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (state.scope === "admin") {
        const button = document.createElement("button");
        button.textContent = "Delete";
        button.className = "danger delete-person";
        button.addEventListener("click", () => deletePerson(person.name));
        td.append(button);
      }
      tr.append(td);
      return tr;
    });
    $("people").replaceChildren(...rows);
  } catch (err) {
    status(err.message, true);
  }
}

async function deletePerson(name) {
  if (!confirm(`Delete ${name} and all their faces?`)) return;
  try {
    const result = await api("DELETE", `/v1/galleries/${enc(gallery())}/people/${enc(name)}`);
    status(`Deleted ${name} (${result.faces_removed} faces).`);
    await loadPeople();
  } catch (err) {
    status(err.message, true);
  }
}

async function createGallery() {
  const name = $("new-gallery").value.trim();
  if (!name) return status("Type a gallery name first.", true);
  try {
    await api("POST", "/v1/galleries", { name });
    $("new-gallery").value = "";
    status(`Created gallery ${name}.`);
    await loadGalleries(name);
  } catch (err) {
    status(err.message, true);
  }
}

async function deleteGallery() {
  const name = gallery();
  if (!confirm(`Delete gallery ${name} with everyone in it?`)) return;
  try {
    const result = await api("DELETE", `/v1/galleries/${enc(name)}`);
    status(`Deleted gallery ${name} (${result.faces_removed} faces).`);
    await loadGalleries("default");
  } catch (err) {
    status(err.message, true);
  }
}

// -- camera --------------------------------------------------------------------------------------------
async function startCamera(box, video) {
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    $(box).hidden = false;
  } catch (err) {
    status("Camera unavailable: " + err.message, true);
  }
}

function capture(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
}

// -- enroll ---------------------------------------------------------------------------------------------
async function enroll() {
  const name = $("person-name").value.trim();
  if (!name) return status("Type the person's name first.", true);
  const form = new FormData();
  for (const file of $("enroll-files").files) form.append("image", file, file.name);
  state.captures.forEach((blob, i) => form.append("image", blob, `camera-${i + 1}.jpg`));
  if (!form.has("image")) return status("Choose photos or capture some with the camera.", true);
  const metadata = $("person-metadata").value.trim();
  if (metadata) form.append("metadata", metadata);
  status(`Enrolling ${name}…`);
  try {
    const result = await api("POST", `/v1/galleries/${enc(gallery())}/people/${enc(name)}/faces`, form);
    const skipped = result.skipped.map((s) => `${s.source}: ${s.reason}`).join("; ");
    $("enroll-result").textContent =
      `Enrolled ${result.added.length} face(s) for ${result.name}` + (skipped ? ` · skipped ${skipped}` : "");
    status("");
    state.captures = [];
    $("enroll-captures").textContent = "";
    $("enroll-files").value = "";
    await loadPeople();
  } catch (err) {
    status(err.message, true);
  }
}

// -- identify -------------------------------------------------------------------------------------------
async function identify(blob) {
  const file = blob || $("identify-file").files[0];
  if (!file) return status("Choose a photo to identify.", true);
  const form = new FormData();
  form.append("image", file, file.name || "camera.jpg");
  status("Identifying…");
  try {
    const [result, bitmap] = await Promise.all([
      api("POST", `/v1/identify?gallery=${enc(gallery())}`, form),
      createImageBitmap(file),
    ]);
    draw(bitmap, result);
    status(`${result.faces.length} face(s) found.`);
  } catch (err) {
    status(err.message, true);
  }
}

function draw(bitmap, result) {
  const canvas = $("identify-canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  // the server saw the image after EXIF rotation, as the browser does; scale in case the sizes still differ
  const sx = bitmap.width / result.width, sy = bitmap.height / result.height;
  const line = Math.max(2, Math.round(bitmap.width / 200));
  const items = [];
  for (const face of result.faces) {
    const [x1, y1, x2, y2] = face.box.map((v, i) => v * (i % 2 ? sy : sx));
    const who = face.identity;  // the library's face record: identity.name is null for a stranger
    const known = who.name !== null;
    const color = known ? "#00c853" : "#ff9100";
    const text = known ? `${who.name} ${who.score.toFixed(2)}` : "unknown";
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.font = `${Math.max(14, line * 7)}px sans-serif`;
    const width = ctx.measureText(text).width + 8, height = Math.max(14, line * 7) + 6;
    ctx.fillStyle = color;
    ctx.fillRect(x1 - line / 2, Math.max(0, y1 - height), width, height);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x1 + 4 - line / 2, Math.max(0, y1 - height) + height - 6);
    const li = document.createElement("li");
    li.className = known ? "known" : "unknown";
    li.textContent = `${text} · box ${face.box.map((v) => Math.round(v)).join(",")}`;
    items.push(li);
  }
  canvas.dataset.labels = result.faces.map((f) => f.identity.label).join(",");
  $("identify-results").replaceChildren(...items);
}

// -- people in photos: clusters and their corrections ----------------------------------------------------
async function thumbnailUrl(detection) {
  const response = await fetch(`/v1/galleries/${enc(gallery())}/cluster/faces/${detection}/thumbnail`,
    { headers: { Authorization: "Bearer " + state.key } });
  if (!response.ok) throw new Error(`${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function clusterBlock(name, faces, names) {
  const div = document.createElement("div");
  div.className = "cluster";
  div.dataset.person = name;
  const title = document.createElement("strong");
  title.textContent = `${name} · ${faces.length} face(s)`;
  const strip = document.createElement("div");
  strip.className = "faces";
  for (const face of faces.slice(0, 24)) {
    const img = document.createElement("img");
    img.alt = `face ${face.detection}`;
    img.dataset.detection = face.detection;
    img.addEventListener("click", () => img.classList.toggle("selected"));
    thumbnailUrl(face.detection).then((url) => { img.src = url; }).catch(() => {});
    strip.append(img);
  }
  div.append(title, strip);
  if (state.scope === "admin") {
    const selected = () => [...strip.querySelectorAll("img.selected")].map((img) => Number(img.dataset.detection));
    const input = document.createElement("input");
    input.placeholder = "name";
    input.className = "cluster-name";
    const select = document.createElement("select");
    select.className = "merge-target";
    select.append(...names.filter((n) => n !== name).map((n) => new Option(n, n)));
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(
      input,
      button("Name", "name-cluster", () => correct("name", { person: name, name: input.value.trim() })),
      select,
      button("Merge into", "merge-cluster", () => correct("merge", { source: name, target: select.value })),
      button("Split selected", "split-faces", () => correct("split", { person: name, detections: selected() })),
      button("Not this person", "not-faces", () => correct("not", { person: name, detections: selected() })),
      button("Remove selected", "remove-faces danger", () => correct("remove", { detections: selected() })),
    );
    div.append(actions);
  }
  return div;
}

async function loadClusters() {
  let data;
  try {
    data = await api("GET", `/v1/galleries/${enc(gallery())}/cluster/faces`);
  } catch (err) {
    $("clusters").replaceChildren();
    return;
  }
  const byPerson = new Map();
  for (const face of data.faces) {
    if (!face.person) continue;
    if (!byPerson.has(face.person)) byPerson.set(face.person, []);
    byPerson.get(face.person).push(face);
  }
  const names = [...byPerson.keys()].sort((a, b) => byPerson.get(b).length - byPerson.get(a).length);
  const note = document.createElement("p");
  note.className = "muted";
  note.id = "clusters-summary";
  note.textContent = `${names.length} people in ${new Set(data.faces.map((f) => f.path)).size} photos · ` +
    `${data.faces.filter((f) => f.state === "pending").length} faces waiting`;
  $("clusters").replaceChildren(note, ...names.map((name) => clusterBlock(name, byPerson.get(name), names)));
}

async function correct(action, body) {
  try {
    const result = await api("POST", `/v1/galleries/${enc(gallery())}/cluster/${action}`, body);
    status(`${action}: ${JSON.stringify(result.result)}`);
    await Promise.all([loadPeople(), loadClusters()]);
  } catch (err) {
    status(err.message, true);
  }
}

async function runClustering() {
  try {
    const report = await api("POST", `/v1/galleries/${enc(gallery())}/cluster`, {});
    status(`Clustered: ${report.attached} joined people, ${report.clustered} in ${report.new_people.length} new clusters.`);
    await Promise.all([loadPeople(), loadClusters()]);
  } catch (err) {
    status(err.message, true);
  }
}

// -- wiring ---------------------------------------------------------------------------------------------
// -- anonymise: the image comes back as a JPEG (no metadata), previewed here and offered for download ---
async function anonymize() {
  const file = $("anonymize-file").files[0];
  if (!file) return status("Choose an image to anonymise.", true);
  const params = new URLSearchParams({ method: $("anonymize-method").value, keep: $("anonymize-keep").value,
                                       gallery: gallery() });
  if ($("anonymize-strength").value) params.set("strength", $("anonymize-strength").value);
  const form = new FormData();
  form.append("image", file);
  status("Anonymising…");
  const response = await fetch("/v1/anonymize?" + params, {
    method: "POST", headers: { Authorization: "Bearer " + state.key }, body: form });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    return status(`Anonymise failed: ${response.status}: ${(data.error && data.error.message) || response.statusText}`, true);
  }
  const url = URL.createObjectURL(await response.blob());
  const kept = JSON.parse(response.headers.get("X-Kept") || "[]");
  $("anonymize-preview").src = url;
  $("anonymize-preview").hidden = false;
  $("anonymize-download").href = url;
  $("anonymize-download").hidden = false;
  $("anonymize-result").textContent = `${response.headers.get("X-Faces")} face(s), ` +
    `${response.headers.get("X-Covered")} covered` + (kept.length ? `, visible: ${kept.join(", ")}` : "");
  status("Anonymised.");
}

$("anonymize-btn").addEventListener("click", () => anonymize().catch((err) => status(err.message, true)));
$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("key").value);
});
$("signout").addEventListener("click", signOut);
$("gallery").addEventListener("change", () => Promise.all([loadPeople(), loadClusters()]));
$("refresh-clusters").addEventListener("click", loadClusters);
$("run-clustering").addEventListener("click", runClustering);
$("refresh-people").addEventListener("click", loadPeople);
$("create-gallery").addEventListener("click", createGallery);
$("delete-gallery").addEventListener("click", deleteGallery);
$("enroll-btn").addEventListener("click", enroll);
$("identify-btn").addEventListener("click", () => identify());
$("enroll-camera").addEventListener("click", () => startCamera("enroll-cam", $("enroll-video")));
$("identify-camera").addEventListener("click", () => startCamera("identify-cam", $("identify-video")));
$("enroll-snap").addEventListener("click", async () => {
  state.captures.push(await capture($("enroll-video")));
  $("enroll-captures").textContent = `${state.captures.length} photo(s) captured`;
});
$("identify-snap").addEventListener("click", async () => identify(await capture($("identify-video"))));

if (state.key) signIn(state.key);
