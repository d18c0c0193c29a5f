// Runs the README's Node example ("Embed it") as printed: EMBED_SECRET, user_id and
// user_name come from the environment; prints the token (tests/test_readme_embed.py).
const EMBED_SECRET = process.env.EMBED_SECRET;
const user = { id: process.env.USER_ID, name: process.env.USER_NAME };
const example = require("fs").readFileSync(process.argv[2], "utf8");
// eslint-disable-next-line no-new-func
const token = new Function("require", "EMBED_SECRET", "user", example + "\nreturn token;")(
  require, EMBED_SECRET, user);
process.stdout.write(token);
