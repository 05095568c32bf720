// The Web-standard form: export default { fetch }.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return Response.json({ message: 'Hello from JavaScript', path: url.pathname });
  },
};
