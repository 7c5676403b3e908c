// The field relay of shared/PROTOCOL.md, as small as the real one: rooms, and three
// messages forwarded to everybody else in the sender's room. It prints
// "listening PORT" once it accepts connections (PORT=0 picks a free port; HOST, the
// address, is 127.0.0.1 unless set) and "join ROOM" for each join, so that tests wait on
// events instead of sleeping. TLS_CERT and TLS_KEY (PEM files) make it serve https.
// POLLING_ONLY=1 makes it refuse websockets, as a relay behind a proxy that cannot pass
// them does: Engine.IO over long polling alone, never upgraded.
const { Server } = require("socket.io");
const fs = require("fs");

const server = process.env.TLS_CERT
  ? require("https").createServer({
      cert: fs.readFileSync(process.env.TLS_CERT),
      key: fs.readFileSync(process.env.TLS_KEY),
    })
  : require("http").createServer();
const io = new Server(server, {
  cors: { origin: "*" },
  ...(process.env.POLLING_ONLY === "1" && { transports: ["polling"] }),
});

io.on("connection", (socket) => {
  socket.on("joinRoom", (room) => {
    socket.join(room);
    console.log(`join ${JSON.stringify(room)}`);
  });
  socket.on("sendOffer", ({ offer, room }) => socket.to(room).emit("receiveOffer", { offer }));
  socket.on("sendAnswer", ({ answer, room }) => socket.to(room).emit("receiveAnswer", { answer }));
  socket.on("sendCandidate", ({ candidate, room }) =>
    socket.to(room).emit("receiveCandidate", { candidate }));
});

server.listen(Number(process.env.PORT || 0), process.env.HOST || "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
