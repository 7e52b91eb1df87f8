/**
 * `createMeshNode(init)`: one session's node with the full control API. Kept apart from
 * node.ts so the control methods (which drive a MeshNode) and the node do not import each other.
 */
import { registerNodeMethods } from './control/methods.js'
import { MeshNode, type MeshNodeInit } from './node.js'

export async function createMeshNode(init: MeshNodeInit): Promise<MeshNode> {
  return new MeshNode(init, registerNodeMethods)
}
