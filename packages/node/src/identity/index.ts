export { createInvite, joinMesh, MAX_INVITE_TTL_MS, verifyInvite, type InviteOptions, type InvitePayload, INVITE_PREFIX } from './invite.js'
export {
  decodePrivateKey,
  encodePrivateKey,
  newEd25519Key,
  peerIdStringOfRaw,
  publicKeyOfPeer,
  verifyRaw,
  type Ed25519PrivateKey
} from './keys.js'
export { createMesh, defaultMesh, listMeshes, loadMesh, meshFromFile, MeshFileSchema, meshToFile, saveMesh, type Mesh } from './mesh.js'
export { presenceKey, swarmKey } from './secrets.js'
export { loadOrCreateSessionKey, type SessionKey } from './session-key.js'
