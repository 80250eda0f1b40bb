// Server-Sent Events over fetch + ReadableStream: EventSource cannot send the x-api-key header.

/** Parses the text/event-stream body of `response`, calling `onEvent({event, data, id})` per event. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  let id = null;
  const dispatch = () => {
    if (data.length) onEvent({ event: event || "message", data: data.join("\n"), id });
    event = "";
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") { dispatch(); continue; }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "event") event = text;
      else if (field === "data") data.push(text);
      else if (field === "id") id = text;
    }
  }
  dispatch();
}
